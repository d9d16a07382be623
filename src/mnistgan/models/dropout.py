"""Dropout whose mask is drawn from 16 random bits per element: torch's arithmetic otherwise, the
keep probability within 2^-17.

torch's CPU dropout draws its mask with `bernoulli_`, a serial kernel (Intel CPUs alone get MKL's
vectorised path), and `torch.rand` spends one 32-bit draw of the serial Mersenne Twister per
element. Here each element takes 16 random bits: the four int16 lanes of full-range int64 draws,
compared with a threshold, so that an element is kept with probability round(65536 (1 - p)) / 65536
(within 2^-17 of 1 - p). The rest is torch's own arithmetic: noise = mask / (1 - p) in the input's
dtype, output = input * noise. Its speed-up is measured in docs/performance.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ranks import sample_rows


class Dropout(nn.Dropout):
    """nn.Dropout (same constructor, no parameters, same state_dict) with a rand-based mask."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p >= 1 or self.inplace:
            return F.dropout(x, self.p, True, self.inplace)
        keep = 1.0 - self.p
        mask = sample_rows(x.shape[0], lambda m: keep_mask(torch.Size((m, *x.shape[1:])), keep, x.device))
        noise = mask.to(x.dtype).div_(keep)
        return x * noise


def keep_mask(shape: torch.Size, keep: float, device: torch.device) -> torch.Tensor:
    """Bernoulli(keep) booleans of `shape`. On CPU from 16 random bits each (four per int64 draw
    of torch's serial generator), keep rounded to a multiple of 2^-16; elsewhere (CUDA's
    generator is parallel) torch.rand's, as verified on the GPU."""
    if device.type != "cpu":
        return torch.rand(shape, device=device) < keep
    n = shape.numel()
    lanes = (
        torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None).view(torch.int16)
    )
    return lanes[:n].view(shape) < round(keep * 65536) - 32768
