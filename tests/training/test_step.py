"""training/step.py: the optimisers the loop builds update like the reference ones."""

from __future__ import annotations

import copy

import torch


def test_loop_optimizer_updates_nhwc_weights_like_reference_adam():
    """The loop's fused Adam on channels_last (NHWC) conv weights gives the reference
    single-tensor Adam's parameters over a few real training steps. torch 2.14's fused CPU kernel
    walks parameter, gradient and moments in memory order: had any of them another layout than
    its parameter (an NCHW gradient, moments restored without their strides), it would update
    with the wrong elements, silently (0.03-0.06 off after 3 steps at lr 1e-2)."""
    from mnistgan.config import Config, with_overrides
    from mnistgan.hardware import autocast_for
    from mnistgan.models import build_discriminator, build_generator
    from mnistgan.training.step import make_optimizer, make_step

    cpu, lr = torch.device("cpu"), 1e-2
    cfg = with_overrides(
        Config(), {"model": "dcgan", "g_width": 8, "d_width": 8, "z_dim": 8, "clusters": 0, "lr": lr}
    )
    torch.manual_seed(0)
    G0 = build_generator(cfg.model, training=True).to(
        memory_format=torch.channels_last
    )  # as the loop builds them
    D0 = build_discriminator(cfg.model, training=True).to(memory_format=torch.channels_last)
    real = torch.rand(3, 10, 1, 28, 28) * 2 - 1
    params = []
    for fused in (True, False):
        G, D = copy.deepcopy(G0), copy.deepcopy(D0)
        if fused:  # what the loop builds
            opt_g, opt_d = (
                make_optimizer(G.parameters(), cfg, lr, cpu),
                make_optimizer(D.parameters(), cfg, lr, cpu),
            )
            assert opt_g.defaults["fused"] and opt_d.defaults["fused"]
        else:
            opt_g, opt_d = (
                torch.optim.Adam(m.parameters(), lr=lr, betas=(0.5, 0.999), foreach=False) for m in (G, D)
            )
        step = make_step(cfg, G, D, opt_g, opt_d, autocast_for(cpu, "fp32"), cpu)
        torch.manual_seed(1)
        for i in range(3):
            step(real[i], None, i, 0.0)
        params.append(list(G.parameters()) + list(D.parameters()))
    nhwc = [p for p in params[0] if p.dim() == 4 and p.shape[1] > 1 and not p.is_contiguous()]
    assert len(nhwc) >= 2  # the case in question: G's and D's 4x4 weights laid out NHWC
    for got, want, start in zip(*params, list(G0.parameters()) + list(D0.parameters())):
        assert not torch.equal(want, start)  # every parameter moved
        # the same update up to float rounding (fused and single-tensor Adam order their operations
        # differently); a layout mix-up moves weights by 1e-2 here
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-4), (got - want).abs().max()
