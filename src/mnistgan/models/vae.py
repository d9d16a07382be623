"""A VAE baseline (Kingma & Welling 2014) that trains and exports like a GAN.

The decoder *is* the DCGAN generator (z -> (1, 28, 28) in [-1, 1]), so `generate`, `evaluate`
and every export work on it unchanged; the encoder is the DCGAN discriminator's conv stack with
a (mu, log sigma^2) head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .cpu_formulations import TrainingDCGANGenerator
from .dcgan import DCGANDiscriminator, DCGANGenerator


class VAEEncoder(nn.Module):
    """x (N, 1, 28, 28) in [-1, 1] -> (mu, logvar), each (N, z_dim)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        body = DCGANDiscriminator(cfg)
        self.net = body.net
        self.fc = nn.Linear(body.fc.in_features, 2 * cfg.z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.fc(self.net(x).flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 8)  # keeps exp(logvar) finite in bf16


def vae_losses(
    x: torch.Tensor, x_hat: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction, KL), both summed over dimensions and averaged over the batch (nats/image).

    Pixels are Bernoulli in [0, 1]: recon = -sum[p log q + (1-p) log(1-q)], p = (x+1)/2, q = (x_hat+1)/2.
    KL(N(mu, sigma^2) || N(0, 1)) = -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2).
    """
    p = (x.float() + 1) / 2
    q = ((x_hat.float() + 1) / 2).clamp(1e-6, 1 - 1e-6)
    with torch.autocast(
        x.device.type, enabled=False
    ):  # CUDA autocast refuses BCE on probabilities: fp32 here
        recon = F.binary_cross_entropy(q, p, reduction="sum") / x.shape[0]
    mu, logvar = mu.float(), logvar.float()
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / x.shape[0]
    return recon, kl


VAEDecoder = DCGANGenerator
VAETrainingDecoder = TrainingDCGANGenerator
