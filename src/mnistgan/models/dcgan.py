"""Convolutional G and D after Radford et al. 2015, sized for 28x28 (7 -> 14 -> 28)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .dropout import Dropout
from .layers import n_labels, activation, maybe_spectral, norm2d

DEFAULT_WIDTH = 64
DEFAULT_D_DEPTH = 2  # conv layers of D (3 adds a stride-1 conv)


class DCGANGenerator(nn.Module):
    """z (N, z_dim) -> Linear -> (2w, 7, 7) -> ConvT -> (w, 14, 14) -> ConvT -> (1, 28, 28), Tanh."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.g_width or DEFAULT_WIDTH
        bias = cfg.g_norm != "batch"  # a bias before BatchNorm is cancelled by its mean
        self.fc = nn.Linear(cfg.z_dim + n_labels(cfg), 2 * w * 7 * 7, bias=bias)
        self.net = nn.Sequential(
            norm2d(cfg.g_norm, 2 * w), activation(cfg.g_activation),
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=bias), norm2d(cfg.g_norm, w), activation(cfg.g_activation),
            nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh(),
        )
        self.w = w

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], 2 * self.w, 7, 7)
        if not _training_step(self, h):
            return self.net(h)
        # training (docs/performance.md, the "DCGAN training-only formulations" lever): the same
        # function, computed faster on CPU.
        # NHWC from the start, like the channels_last convolutions: else BatchNorm/ReLU run in NCHW
        # and their backward meets NHWC gradients (slow mixed-layout kernels)
        h = self.net[:-2](h.contiguous(memory_format=torch.channels_last))
        last = self.net[-2]
        return self.net[-1](conv_transpose_to_one(h, last.weight, last.bias) if last.out_channels == 1 else last(h))


class DCGANDiscriminator(nn.Module):
    """(1, 28, 28) -> Conv s2 -> (w, 14, 14) -> Conv s2 -> (2w, 7, 7) [-> Conv -> (4w, 7, 7)] -> Linear -> logit."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.d_width or DEFAULT_WIDTH
        sn, norm = cfg.d_norm, ("none" if cfg.d_norm == "spectral" else cfg.d_norm)

        def block(conv: nn.Module, channels: int, first: bool = False) -> list[nn.Module]:
            layers = [maybe_spectral(conv, sn)]
            if not first:
                layers.append(norm2d(norm, channels))
            layers.append(activation(cfg.d_activation))
            if cfg.dropout > 0:
                layers.append(Dropout(cfg.dropout))
            return layers

        layers = block(nn.Conv2d(1, w, 4, 2, 1), w, first=True) + block(nn.Conv2d(w, 2 * w, 4, 2, 1), 2 * w)
        out_ch = 2 * w
        if (cfg.d_depth or DEFAULT_D_DEPTH) == 3:
            layers += block(nn.Conv2d(2 * w, 4 * w, 3, 1, 1), 4 * w)
            out_ch = 4 * w
        self.net = nn.Sequential(*layers)
        self.fc = maybe_spectral(nn.Linear(out_ch * 7 * 7, 1), sn)

    def trunk(self, x: torch.Tensor, nchw: bool = False) -> torch.Tensor:
        """The convolutions: (N, 1, 28, 28) -> (N, C, 7, 7); nchw: the result NCHW in memory."""
        start, fast = 0, _training_step(self, x)
        if fast and x.shape[1] == 1 and x.requires_grad:
            # the G step (D's input needs a gradient): the first conv on the input's space-to-depth,
            # whose input gradient is 2x faster than oneDNN's for one input channel
            first, start = self.net[0], 1
            x = conv_from_one(x, first.weight, first.bias)
        if not (fast and nchw):
            return self.net[start:](x)
        # NCHW for flatten: convert right after the last conv, so that the activation after it runs
        # forward and backward in one layout (flatten's NCHW gradient against NHWC activations
        # would take a slow mixed-layout LeakyReLU backward)
        tail = 1 + max(i for i, m in enumerate(self.net) if isinstance(m, nn.Conv2d))
        return self.net[tail:](self.net[start:tail](x).contiguous())

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x, nchw=True).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        if h.is_contiguous() or not h.is_contiguous(memory_format=torch.channels_last):
            return self.fc(h.flatten(1)).squeeze(1)
        # NHWC activations: the linear layer reads them in place with its weight permuted to match
        # (the same sum, in another order) instead of copying them to NCHW for flatten - that copy's
        # NCHW gradient would meet the NHWC activations in a slow mixed-layout LeakyReLU backward
        N, C, H, W = h.shape
        w = self.fc.weight.view(-1, C, H, W).permute(0, 2, 3, 1).reshape(-1, C * H * W)
        return F.linear(h.permute(0, 2, 3, 1).reshape(N, -1), w, self.fc.bias).squeeze(1)


def _training_step(m: nn.Module, x: torch.Tensor) -> bool:
    """The fast formulations below are used only where they pay: training with gradients on the
    CPU (not sampling or export, which keep the plain modules; not CUDA, where cuDNN's kernels
    are the fast ones and every extra kernel costs a launch)."""
    return m.training and torch.is_grad_enabled() and x.device.type == "cpu"


def conv_from_one(x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
    """F.conv2d(x, weight, bias, stride=2, padding=1) for a one-channel x and a 4x4 kernel, as a
    stride-1 2x2 convolution of x's space-to-depth (4 channels: the pixels' row and column
    parities). Its input gradient is a 4-channel oneDNN kernel instead of the slow one-channel
    one: the G step's D conv1 forward + backward 0.6 ms instead of 1.2 (oneDNN) or 1.1 (im2col).

    The same 16 products per output, summed by oneDNN in fp32 and rounded once, as the plain
    convolution (and the same for both gradients: each weight maps to one weight of the 2x2 kernel)."""
    C = weight.shape[0]
    s2d = F.pixel_unshuffle(F.pad(x, (1, 1, 1, 1)), 2)  # (N, 4, 15, 15): s2d[2p + q, u, v] = x_pad[2u + p, 2v + q]
    k = weight.view(C, 2, 2, 2, 2).permute(0, 2, 4, 1, 3).reshape(C, 4, 2, 2)  # ky = 2a + p, kx = 2b + q
    return F.conv2d(s2d, k, bias)


def conv_transpose_to_one(x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
    """F.conv_transpose2d(x, weight, bias, stride=2, padding=1) with one output channel and a 4x4
    kernel, as a stride-1 2x2 convolution to 4 channels (the output pixels' row and column
    parities) + pixel_shuffle: forward + backward 1.0 ms instead of 1.6 (oneDNN's transposed
    convolution to one channel) or 1.9 (matmul + fold), batch 64.

    Output pixel (2u + p - 1, 2v + q - 1) sums x[u - a, v - b] * weight[2a + p, 2b + q] over a, b
    and the channels: the same 4 x C products as the plain layer, summed by oneDNN in fp32 and
    rounded once; each weight maps to one weight of the 2x2 kernel, so its gradient too."""
    C = weight.shape[0]
    k = weight.view(C, 2, 2, 2, 2).flip(1, 3).permute(2, 4, 0, 1, 3).reshape(4, C, 2, 2)  # [2p + q, c, 1 - a, 1 - b]
    out = F.pixel_shuffle(F.conv2d(x, k, None if bias is None else bias.expand(4), padding=1), 2)
    return out[:, :, 1:-1, 1:-1]
