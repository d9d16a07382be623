"""Adversarial losses as pure functions of discriminator logits, picked by name.

Notation: r = D(x_real), f = D(G(z)) are raw logits (any real number); sigma is the
logistic function; softplus(t) = log(1 + e^t) is the numerically stable form of
-log sigma(-t), so no probability is ever rounded to 0 or 1 before the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def bce_d(r: Tensor, f: Tensor, smooth: float = 0.0) -> Tensor:
    # L_D = -log sigma(r) - log(1 - sigma(f)) = softplus(-r) + softplus(f)
    # one-sided label smoothing (Salimans et al. 2016): the real target is t = 1 - smooth,
    # -t log sigma(r) - (1 - t) log(1 - sigma(r)) = t softplus(-r) + (1 - t) softplus(r)
    real = F.softplus(-r) if smooth == 0 else (1 - smooth) * F.softplus(-r) + smooth * F.softplus(r)
    return real.mean() + F.softplus(f).mean()


def bce_g(f: Tensor) -> Tensor:
    # non-saturating (Goodfellow et al. 2014): L_G = -log sigma(f) = softplus(-f)
    return F.softplus(-f).mean()


def hinge_d(r: Tensor, f: Tensor) -> Tensor:
    # L_D = max(0, 1 - r) + max(0, 1 + f)   (Lim & Ye 2017; Miyato et al. 2018)
    return F.relu(1 - r).mean() + F.relu(1 + f).mean()


def hinge_g(f: Tensor) -> Tensor:
    # L_G = -f
    return -f.mean()


def lsgan_d(r: Tensor, f: Tensor) -> Tensor:
    # L_D = 1/2 (r - 1)^2 + 1/2 f^2   (Mao et al. 2017, a-b-c = 0-1-1)
    return 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean()


def lsgan_g(f: Tensor) -> Tensor:
    # L_G = 1/2 (f - 1)^2
    return 0.5 * ((f - 1) ** 2).mean()


def wgan_d(r: Tensor, f: Tensor) -> Tensor:
    # critic loss L_D = f - r (Arjovsky et al. 2017); the gradient penalty is added by the loop
    return f.mean() - r.mean()


def wgan_g(f: Tensor) -> Tensor:
    # L_G = -f
    return -f.mean()


@dataclass(frozen=True)
class Loss:
    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor], Tensor]
    gradient_penalty: bool = False  # add lambda * GP to L_D (WGAN-GP)
    threshold: float = 0.0  # D calls a logit "real" above this (LSGAN's targets are 0 and 1)


LOSSES = {
    "bce": Loss(bce_d, bce_g),
    "hinge": Loss(hinge_d, hinge_g),
    "lsgan": Loss(lsgan_d, lsgan_g, threshold=0.5),
    "wgan-gp": Loss(wgan_d, wgan_g, gradient_penalty=True),
}


def gradient_penalty(D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """GP = E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat = eps x_real + (1 - eps) x_fake
    (Gulrajani et al. 2017)."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = D(x_hat).float()
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).float().norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(real_logits: Tensor, real_input: Tensor) -> Tensor:
    """R1 = E||grad_x D(x_real)||^2 (Mescheder et al. 2018); the loop multiplies by gamma/2."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_input, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


def d_accuracy_counts(r: Tensor, f: Tensor, threshold: float = 0.0) -> Tensor:
    """How many of the 2B decisions D got right: real logits above the threshold, fake ones below."""
    return (r > threshold).sum() + (f <= threshold).sum()
