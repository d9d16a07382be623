import torch

from mnistgan.config import LossConfig
from mnistgan.training.augment import cutout, d_view, translate


def test_translation_shifts_content_and_fills_background():
    torch.manual_seed(0)
    x = torch.full((64, 1, 28, 28), -1.0)
    x[:, :, 10:18, 10:18] = 1.0  # a bright square in the middle
    y = translate(x)
    assert y.shape == x.shape
    assert torch.equal((y == 1).sum((1, 2, 3)), (x == 1).sum((1, 2, 3)))  # shifted, never cut (it is central)
    assert set(y.unique().tolist()) <= {-1.0, 1.0}
    moved = [not torch.equal(a, b) for a, b in zip(x, y)]
    assert sum(moved) > 32  # most images moved (P(no shift) = 1/49)


def test_cutout_blanks_a_half_size_square():
    torch.manual_seed(0)
    x = torch.ones(32, 1, 28, 28)
    y = cutout(x)
    blank = (y == -1).sum((1, 2, 3))
    assert blank.max() == 14 * 14 and blank.min() > 0


def test_view_is_differentiable_and_noise_anneals():
    torch.manual_seed(0)
    view = d_view(LossConfig(diffaug="translation,cutout", instance_noise=0.5))
    x = torch.zeros(8, 1, 28, 28, requires_grad=True)
    view(x, 0.0).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # G's gradient passes through the augmentation
    plain = d_view(LossConfig(instance_noise=0.5))
    z = torch.zeros(1000, 1, 28, 28)
    assert abs(plain(z, 0.0).std().item() - 0.5) < 0.01
    assert abs(plain(z, 0.5).std().item() - 0.25) < 0.01
    assert torch.equal(plain(z, 1.0), z)
