"""The fast paths of the training step give the plain path's numbers (docs/performance.md)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mnistgan.hardware import keep_freed_memory
from mnistgan.models.dropout import Dropout


def test_keep_freed_memory_changes_no_number():
    keep_freed_memory()  # glibc: True; elsewhere a no-op
    x = torch.randn(256, 1024)
    assert torch.equal((x @ x.t()).sum(0), (x @ x.t()).sum(0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_is_torch_dropout_with_another_mask(dtype):
    torch.manual_seed(0)
    drop, x = Dropout(0.3), torch.randn(512, 1024).to(dtype).requires_grad_(True)
    y = drop(x)
    kept = y != 0
    # the kept share is 1 - p (binomial sd over 524k elements: 0.06%)
    assert abs(kept.float().mean().item() - 0.7) < 0.003
    # kept values are torch's: x * (1 / (1 - p) rounded to the dtype), dropped ones 0
    scale = torch.tensor(1.0, dtype=dtype).div_(0.7)
    assert torch.equal(y[kept], (x * scale)[kept])
    # the gradient is the same noise
    (g,) = torch.autograd.grad(y.float().sum(), x)
    assert torch.equal(g[kept], scale.expand_as(g)[kept]) and (g[~kept] == 0).all()
    # eval mode and p = 0: identity; p = 1: torch's (zeros)
    assert drop.eval()(x) is x
    assert Dropout(0.0)(x) is x
    assert (Dropout(1.0)(x) == 0).all()
    assert Dropout(0.3).state_dict() == {} and isinstance(drop, torch.nn.Dropout)


def test_dropout_follows_the_torch_seed():
    x = torch.ones(64, 256)
    torch.manual_seed(3)
    a = Dropout(0.3)(x)
    torch.manual_seed(3)
    assert torch.equal(a, Dropout(0.3)(x))
