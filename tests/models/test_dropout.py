"""models/dropout.py: torch's dropout arithmetic with a mask drawn from 16 random bits per element."""

from __future__ import annotations

import pytest
import torch

from mnistgan.models.dropout import Dropout, keep_mask


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


def test_dropout_mask_uses_every_16_bit_lane_uniformly():
    """Each int64 draw feeds four elements; a draw with a fixed sign bit (torch's default
    random_() range) would keep every fourth element far more often than the others."""
    torch.manual_seed(0)
    for keep in (0.5, 0.7, 0.1):
        lanes = keep_mask(torch.Size([40_000, 4]), keep, torch.device("cpu")).float().mean(0)
        assert (lanes - keep).abs().max() < 0.01  # sd 0.0025 per lane


def test_dropout_follows_the_torch_seed():
    x = torch.ones(64, 256)
    torch.manual_seed(3)
    a = Dropout(0.3)(x)
    torch.manual_seed(3)
    assert torch.equal(a, Dropout(0.3)(x))
