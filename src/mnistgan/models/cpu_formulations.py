"""Training-only formulations of the DCGAN's layers that run faster on a CPU: the same function
(the same products, summed in fp32 by oneDNN and rounded once), laid out for oneDNN's kernels.

`registry.build_generator(cfg, training=True)` (and `build_discriminator`) build these subclasses
instead of the plain models in dcgan.py: that is the one switch. They hold the same layers and
weights (same state_dict), and fall back to the plain forward wherever the faster form does not
pay (`cpu_training`): evaluation, sampling and export, and CUDA, where cuDNN's kernels are the
fast ones. tests/models/test_cpu_formulations.py checks values and gradients against the plain
modules; docs/performance.md has the measurements.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dcgan import DCGANDiscriminator, DCGANGenerator


def cpu_training(m: nn.Module, x: torch.Tensor) -> bool:
    """Training with gradients on the CPU: where these formulations are used."""
    return m.training and torch.is_grad_enabled() and x.device.type == "cpu"


class TrainingDCGANGenerator(DCGANGenerator):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], 2 * self.w, 7, 7)
        if not cpu_training(self, h):
            return self.net(h)
        # NHWC from the start, like the channels_last convolutions: else BatchNorm/ReLU run in NCHW
        # and their backward meets NHWC gradients (mixed-layout kernels)
        h = self.net[:-2](h.contiguous(memory_format=torch.channels_last))
        last = self.net[-2]
        return self.net[-1](
            conv_transpose_to_one(h, last.weight, last.bias) if last.out_channels == 1 else last(h)
        )


class TrainingDCGANDiscriminator(DCGANDiscriminator):
    def trunk(self, x: torch.Tensor, nchw: bool = False) -> torch.Tensor:
        """The convolutions: (N, 1, 28, 28) -> (N, C, 7, 7); nchw: the result NCHW in memory."""
        start, fast = 0, cpu_training(self, x)
        if fast and x.shape[1] == 1 and x.requires_grad:
            # the G step (D's input needs a gradient): the first conv on the input's space-to-depth,
            # whose input gradient is a 4-channel kernel instead of oneDNN's one-channel one
            first, start = self.net[0], 1
            x = conv_from_one(x, first.weight, first.bias)
        if not (fast and nchw):
            return self.net[start:](x)
        # NCHW for flatten: convert right after the last conv, so that the activation after it runs
        # forward and backward in one layout (flatten's NCHW gradient against NHWC activations
        # would take a mixed-layout LeakyReLU backward)
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
        # NCHW gradient would meet the NHWC activations in a mixed-layout LeakyReLU backward
        N, C, H, W = h.shape
        w = self.fc.weight.view(-1, C, H, W).permute(0, 2, 3, 1).reshape(-1, C * H * W)
        return F.linear(h.permute(0, 2, 3, 1).reshape(N, -1), w, self.fc.bias).squeeze(1)


def conv_from_one(x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
    """F.conv2d(x, weight, bias, stride=2, padding=1) for a one-channel x and a 4x4 kernel, as a
    stride-1 2x2 convolution of x's space-to-depth (4 channels: the pixels' row and column
    parities), so that its input gradient is a 4-channel oneDNN kernel.

    The same 16 products per output, summed by oneDNN in fp32 and rounded once, as the plain
    convolution (and the same for both gradients: each weight maps to one weight of the 2x2 kernel)."""
    C = weight.shape[0]
    s2d = F.pixel_unshuffle(
        F.pad(x, (1, 1, 1, 1)), 2
    )  # (N, 4, 15, 15): s2d[2p + q, u, v] = x_pad[2u + p, 2v + q]
    k = weight.view(C, 2, 2, 2, 2).permute(0, 2, 4, 1, 3).reshape(C, 4, 2, 2)  # ky = 2a + p, kx = 2b + q
    return F.conv2d(s2d, k, bias)


def conv_transpose_to_one(x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:
    """F.conv_transpose2d(x, weight, bias, stride=2, padding=1) with one output channel and a 4x4
    kernel, as a stride-1 2x2 convolution to 4 channels (the output pixels' row and column
    parities) + pixel_shuffle.

    Output pixel (2u + p - 1, 2v + q - 1) sums x[u - a, v - b] * weight[2a + p, 2b + q] over a, b
    and the channels: the same 4 x C products as the plain layer, summed by oneDNN in fp32 and
    rounded once; each weight maps to one weight of the 2x2 kernel, so its gradient too."""
    C = weight.shape[0]
    k = (
        weight.view(C, 2, 2, 2, 2).flip(1, 3).permute(2, 4, 0, 1, 3).reshape(4, C, 2, 2)
    )  # [2p + q, c, 1 - a, 1 - b]
    out = F.pixel_shuffle(F.conv2d(x, k, None if bias is None else bias.expand(4), padding=1), 2)
    return out[:, :, 1:-1, 1:-1]
