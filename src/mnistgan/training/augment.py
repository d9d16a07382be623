"""What D sees: DiffAugment (Zhao et al. 2020) and annealed instance noise (Sonderby et al. 2016).

Both are applied to real *and* fake images, differentiably, so G's gradient passes through
them. Background in our scale is -1, so shifted-in and cut-out pixels are set to -1.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ..config import LossConfig
from ..ranks import sample_rows


def translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio*size pixels (3 px at 28x28), filling with background."""
    B, _, H, W = x.shape
    s = max(1, int(H * ratio))
    ty = sample_rows(B, lambda m: torch.randint(-s, s + 1, (m, 1, 1), device=x.device))
    tx = sample_rows(B, lambda m: torch.randint(-s, s + 1, (m, 1, 1), device=x.device))
    gy = (torch.arange(H, device=x.device).view(1, H, 1) + ty + 1).clamp(0, H + 1)  # +1: into the padding
    gx = (torch.arange(W, device=x.device).view(1, 1, W) + tx + 1).clamp(0, W + 1)
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)  # (B, C, H+2, W+2)
    b = torch.arange(B, device=x.device).view(B, 1, 1)
    return padded.permute(0, 2, 3, 1)[b, gy, gx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Set a random (ratio*H x ratio*W) square of each image to background."""
    B, _, H, W = x.shape
    ch, cw = int(H * ratio), int(W * ratio)
    oy = sample_rows(B, lambda m: torch.randint(0, H + (1 - ch % 2), (m, 1, 1), device=x.device)) - ch // 2
    ox = sample_rows(B, lambda m: torch.randint(0, W + (1 - cw % 2), (m, 1, 1), device=x.device)) - cw // 2
    ys = torch.arange(H, device=x.device).view(1, H, 1)
    xs = torch.arange(W, device=x.device).view(1, 1, W)
    inside = (ys >= oy) & (ys < oy + ch) & (xs >= ox) & (xs < ox + cw)  # (B, H, W)
    return torch.where(inside.unsqueeze(1), torch.full_like(x, -1.0), x)


POLICIES = {"translation": translate, "cutout": cutout}


def d_view(cfg: LossConfig) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """A function (images, training progress in [0, 1]) -> what D is shown."""
    ops = [POLICIES[p] for p in cfg.diffaug.split(",") if p]
    sigma0 = cfg.instance_noise

    def view(x: torch.Tensor, progress: float) -> torch.Tensor:
        for op in ops:
            x = op(x)
        sigma = sigma0 * max(0.0, 1.0 - progress)
        if sigma > 0:
            x = x + sigma * sample_rows(
                x.shape[0], lambda m: torch.randn((m, *x.shape[1:]), dtype=x.dtype, device=x.device)
            )
        return x

    return view
