import math

import torch

from mnistgan.training.losses import LOSSES, d_accuracy_counts, gradient_penalty


def test_bce_of_zero_logits_is_two_log_two():
    z = torch.zeros(8)
    assert math.isclose(LOSSES["bce"].d(z, z).item(), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(LOSSES["bce"].g(z).item(), math.log(2), rel_tol=1e-6)


def test_bce_matches_the_textbook_formula_and_is_stable():
    r, f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    s = torch.sigmoid
    expected = (-torch.log(s(r))).mean() + (-torch.log(1 - s(f))).mean()
    assert torch.allclose(LOSSES["bce"].d(r, f), expected)
    big = torch.tensor([200.0])  # sigmoid rounds to 1.0: the naive log(1 - p) would be inf
    assert torch.isfinite(LOSSES["bce"].d(-big, big)) and LOSSES["bce"].d(-big, big).item() > 399


def test_hinge_lsgan_wgan_hand_values():
    r, f = torch.tensor([0.5, 2.0]), torch.tensor([-0.5, 1.0])
    # hinge: mean(max(0, 1 - r)) + mean(max(0, 1 + f)) = (0.5 + 0)/2 + (0.5 + 2)/2
    assert math.isclose(LOSSES["hinge"].d(r, f).item(), 0.25 + 1.25)
    assert math.isclose(LOSSES["hinge"].g(f).item(), -0.25)
    # lsgan: 0.5 mean((r-1)^2) + 0.5 mean(f^2) = 0.5 (0.25 + 1)/2 + 0.5 (0.25 + 1)/2
    assert math.isclose(LOSSES["lsgan"].d(r, f).item(), 0.625)
    assert math.isclose(LOSSES["lsgan"].g(f).item(), 0.5 * (2.25 + 0) / 2)
    assert math.isclose(LOSSES["wgan-gp"].d(r, f).item(), 0.25 - 1.25)


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
    torch.manual_seed(0)
    w = torch.randn(784)

    def critic(x):  # grad_x = w everywhere, so GP = (||w|| - 1)^2
        return x.flatten(1) @ w

    real, fake = torch.randn(6, 1, 28, 28), torch.randn(6, 1, 28, 28)
    gp = gradient_penalty(critic, real, fake)
    assert math.isclose(gp.item(), (w.norm().item() - 1) ** 2, rel_tol=1e-4)


def test_d_accuracy_counts():
    r, f = torch.tensor([1.0, -1.0, 2.0]), torch.tensor([-1.0, 3.0, -0.1])
    assert d_accuracy_counts(r, f).item() == 2 + 2


def test_label_smoothing_and_r1():
    r, f = torch.tensor([3.0]), torch.tensor([-3.0])
    s = torch.sigmoid
    expected = -(0.9 * torch.log(s(r)) + 0.1 * torch.log(1 - s(r))) - torch.log(1 - s(f))
    assert torch.allclose(LOSSES["bce"].d(r, f, smooth=0.1), expected)
    from mnistgan.training.losses import r1_penalty

    w = torch.randn(784)
    x = torch.randn(5, 1, 28, 28, requires_grad=True)
    logits = x.flatten(1) @ w  # grad_x = w, so R1 = ||w||^2
    assert torch.allclose(r1_penalty(logits, x), w.pow(2).sum(), rtol=1e-5)


def test_ema_update_arithmetic():
    from mnistgan.training.step import EMA

    G = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    G_ema = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    with torch.no_grad():
        for p in G.parameters():
            p.fill_(1.0)
        for p in G_ema.parameters():
            p.fill_(0.0)
        G[1].running_mean.fill_(3.0)
    ema = EMA(G_ema, G)  # the lists are taken once: later updates must still see the same tensors
    # late (n = 100000): min(0.999, 100001/100010) = 0.999, so ema = 0.999 * 0 + 0.001 * 1
    ema.update(0.999, 100_000)
    assert all(torch.allclose(p, torch.full_like(p, 0.001)) for p in G_ema.parameters())
    # early on the warm-up decay (1 + n) / (10 + n) = 0.1 at n = 0: ema = 0.1 * 0.001 + 0.9 * 1
    ema.update(0.999, 0)
    assert all(torch.allclose(p, torch.full_like(p, 0.1 * 0.001 + 0.9)) for p in G_ema.parameters())
    assert torch.equal(G_ema[1].running_mean, G[1].running_mean)  # buffers are copied, not averaged
