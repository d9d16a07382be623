"""The benchmarks' textbook loop runs mnistgan's architectures as course code does
(benchmarks/textbook.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from mnistgan.models import build_discriminator, build_generator  # noqa: E402
from mnistgan.models.dropout import Dropout  # noqa: E402

from textbook import SETUPS, course_model  # noqa: E402


@pytest.mark.parametrize("setup", ["textbook-mlp", "textbook-dcgan", "textbook-mlp-wgan-gp"])
def test_course_model_is_the_same_network_in_plain_torch(setup):
    cfg = SETUPS[setup]["model"]
    torch.manual_seed(0)
    G, D = build_generator(cfg), build_discriminator(cfg)
    Gc, Dc = course_model(G), course_model(D)
    # the same parameter objects: the same architecture and weights, nothing added or left out
    assert {id(p) for p in Gc.parameters()} == {id(p) for p in G.parameters()}
    assert {id(p) for p in Dc.parameters()} == {id(p) for p in D.parameters()}
    # torch's own dropout, not mnistgan's faster mask
    assert not any(isinstance(m, Dropout) for m in Dc.modules())
    assert any(type(m) is nn.Dropout for m in Dc.modules()) == (cfg.dropout > 0)
    # the same function and gradients: in training mode without dropout (the masks differ by
    # design), where mnistgan's DCGAN takes its training-only formulations
    for m in (G, D, Gc, Dc):
        m.train()
        for d in m.modules():
            if isinstance(d, nn.Dropout):
                d.p = 0.0
    z = torch.randn(6, cfg.z_dim)
    outs = []
    for g, d in ((G, D), (Gc, Dc)):
        for p in list(g.parameters()) + list(d.parameters()):
            p.grad = None
        x = g(z)
        y = d(x)
        y.pow(2).sum().backward()
        outs.append(
            [x.detach(), y.detach()] + [p.grad.clone() for p in list(g.parameters()) + list(d.parameters())]
        )
    assert outs[0][1].shape == (6,)
    for a, b in zip(*outs):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
