"""The fast paths of the training step give the plain path's numbers (docs/performance.md)."""

from __future__ import annotations

import copy

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


def test_dropout_mask_uses_every_16_bit_lane_uniformly():
    """Each int64 draw feeds four elements; a draw with a fixed sign bit (torch's default
    random_() range) would keep every fourth element far more often than the others."""
    from mnistgan.models.dropout import keep_mask

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


def _dcgan_step(G, D, z, fast: bool, amp: bool, monkeypatch):
    """G forward, D on G(z), backward: outputs and every parameter gradient."""
    import mnistgan.models.dcgan as dcgan

    with monkeypatch.context() as m:
        if not fast:
            m.setattr(dcgan, "_training_step", lambda module, x: False)
        for p in list(G.parameters()) + list(D.parameters()):
            p.grad = None
        y = G.clusters_of(z) if hasattr(G, "clusters_of") else None  # --clusters: ProjectionD needs them
        with torch.autocast("cpu", torch.bfloat16, enabled=amp):
            x = G(z)
            out = D(x, y).float()
        out.pow(2).sum().backward()
    return [x.detach().float(), out.detach()] + [p.grad.clone() for p in list(G.parameters()) + list(D.parameters())]


def _accumulate(sums: dict, key, values: list) -> None:
    sums[key] = [a + v for a, v in zip(sums[key], values)] if key in sums else values


@pytest.mark.parametrize("variant", [{}, {"d_norm": "spectral", "d_depth": 3, "g_norm": "none"}, {"clusters": 5},
                                     {"clusters": 5, "dropout": 0.0, "d_norm": "layer"}])
@pytest.mark.parametrize("channels_last", [True, False])
def test_dcgan_fast_training_path_matches_the_modules(variant, channels_last, monkeypatch):
    """The training-only formulations (D's first conv on the input's space-to-depth, G's last
    transposed conv as a 4-channel conv + pixel shuffle, NHWC linear of D, NHWC G trunk) compute
    the same function and gradients as the plain modules: fp32 within 1e-5 (relative); under
    bf16 autocast, over four batches, no further from fp32 than the plain path is (x 1.5 + 2e-3)."""
    from mnistgan.config import ModelConfig
    from mnistgan.models import build_discriminator, build_generator

    torch.manual_seed(0)
    cfg = ModelConfig(model="dcgan", g_width=16, d_width=16, **variant)
    G, D = build_generator(cfg), build_discriminator(cfg)
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    # bf16 errors are compared over several batches: a single-element gradient (G's last bias:
    # a sum of per-pixel terms that nearly cancel) has an error that swings 3x from batch to batch
    sq = {}  # (fast, amp) -> per-tensor squared errors summed over the batches; "ref" -> squared norms
    for _ in range(4):
        z = torch.randn(12, cfg.z_dim)
        # fresh copies per run: spectral norm's power iteration updates its vectors in training mode
        ref = _dcgan_step(copy.deepcopy(G), copy.deepcopy(D), z, fast=False, amp=False, monkeypatch=monkeypatch)
        _accumulate(sq, "ref", [r.float().pow(2).sum() for r in ref])
        for fast, amp in ((True, False), (False, True), (True, True)):
            res = _dcgan_step(copy.deepcopy(G), copy.deepcopy(D), z, fast, amp, monkeypatch)
            _accumulate(sq, (fast, amp), [(x.float() - r.float()).pow(2).sum() for x, r in zip(res, ref)])
    rel = {k: [(e / n.clamp_min(1e-24)).sqrt().item() for e, n in zip(v, sq["ref"])] for k, v in sq.items() if k != "ref"}
    assert max(rel[True, False]) < 1e-5
    for fast_bf16, plain_bf16 in zip(rel[True, True], rel[False, True]):
        assert fast_bf16 <= 1.5 * plain_bf16 + 2e-3


@pytest.mark.parametrize("penalty", ["gp", "r1"])
def test_dcgan_fast_path_penalties_match_the_modules(penalty, monkeypatch):
    """WGAN-GP and R1 differentiate D's input gradient again (double backward), here through the
    fast formulation of D's first conv: the penalty and D's parameter gradients match the plain
    modules' in fp32."""
    import mnistgan.models.dcgan as dcgan

    from mnistgan.config import ModelConfig
    from mnistgan.losses import gradient_penalty, r1_penalty
    from mnistgan.models import build_discriminator

    torch.manual_seed(0)
    D = build_discriminator(ModelConfig(model="dcgan", d_width=8, d_norm="layer", dropout=0.0))
    D = D.to(memory_format=torch.channels_last)
    real, fake = torch.rand(6, 1, 28, 28) * 2 - 1, torch.rand(6, 1, 28, 28) * 2 - 1

    def penalty_and_grads(fast: bool):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(dcgan, "_training_step", lambda module, x: False)
            D.zero_grad(set_to_none=True)
            torch.manual_seed(1)  # the same interpolation weights
            if penalty == "gp":
                value = gradient_penalty(D, real, fake)
            else:
                x = real.clone().requires_grad_(True)
                value = r1_penalty(D(x), x)
            value.backward()
        return [value.detach()] + [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in D.parameters()]

    fast, plain = penalty_and_grads(True), penalty_and_grads(False)
    assert plain[0] > 0 and any(g.abs().sum() > 0 for g in plain[1:])
    for a, b in zip(fast, plain):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6 * b.abs().max().item())


def test_dcgan_fast_path_is_off_for_sampling_and_export():
    import mnistgan.models.dcgan as dcgan

    from mnistgan.config import ModelConfig
    from mnistgan.models import build_generator

    G, x = build_generator(ModelConfig(model="dcgan", g_width=8)), torch.zeros(1)
    assert dcgan._training_step(G.net, x)
    with torch.no_grad():
        assert not dcgan._training_step(G.net, x)
    assert not dcgan._training_step(G.eval().net, x)
    # not on CUDA (cuDNN's kernels are the fast ones there); the meta device stands in for it
    assert not dcgan._training_step(G.train().net, torch.zeros(1, device="meta"))


def test_loop_optimizer_updates_nhwc_weights_like_reference_adam():
    """The loop's fused Adam on channels_last (NHWC) conv weights gives the reference
    single-tensor Adam's parameters over a few real training steps. torch 2.14's fused CPU kernel
    walks parameter, gradient and moments in memory order: had any of them another layout than
    its parameter (an NCHW gradient, moments restored without their strides), it would update
    with the wrong elements, silently (measured: 0.03-0.06 off after 3 steps at lr 1e-2)."""
    from mnistgan.config import Config, with_overrides
    from mnistgan.hardware import autocast_for
    from mnistgan.models import build_discriminator, build_generator
    from mnistgan.train import make_optimizer, make_step

    cpu, lr = torch.device("cpu"), 1e-2
    cfg = with_overrides(Config(), {"model": "dcgan", "g_width": 8, "d_width": 8, "z_dim": 8, "clusters": 0, "lr": lr})
    torch.manual_seed(0)
    G0 = build_generator(cfg.model).to(memory_format=torch.channels_last)
    D0 = build_discriminator(cfg.model).to(memory_format=torch.channels_last)
    real = torch.rand(3, 10, 1, 28, 28) * 2 - 1
    params = []
    for fused in (True, False):
        G, D = copy.deepcopy(G0), copy.deepcopy(D0)
        if fused:  # what the loop builds
            opt_g, opt_d = make_optimizer(G.parameters(), cfg, lr, cpu), make_optimizer(D.parameters(), cfg, lr, cpu)
            assert opt_g.defaults["fused"] and opt_d.defaults["fused"]
        else:
            opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=lr, betas=(0.5, 0.999), foreach=False) for m in (G, D))
        step = make_step(cfg, G, D, opt_g, opt_d, autocast_for(cpu, "fp32"), cpu)
        torch.manual_seed(1)
        for i in range(3):
            step(real[i], None, i, 0.0)
        params.append(list(G.parameters()) + list(D.parameters()))
    nhwc = [p for p in params[0] if p.dim() == 4 and p.shape[1] > 1 and not p.is_contiguous()]
    assert len(nhwc) >= 2  # the case in question: G's and D's 4x4 weights laid out NHWC
    for got, want, start in zip(*params, list(G0.parameters()) + list(D0.parameters())):
        assert not torch.equal(want, start)  # every parameter moved
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6), (got - want).abs().max()
