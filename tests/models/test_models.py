import pytest
import torch

from mnistgan.config import ModelConfig
from mnistgan.models import build_discriminator, build_generator, count_params


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"g_norm": "layer", "d_norm": "layer", "g_activation": "leaky_relu", "dropout": 0.3},
        {"g_norm": "none", "d_norm": "spectral", "d_depth": 3, "g_activation": "silu"},
    ],
)
def test_shapes_and_ranges(model, variant):
    cfg = ModelConfig(model=model, z_dim=16, g_width=8, d_width=8, **variant)
    G, D = build_generator(cfg), build_discriminator(cfg)
    z = torch.randn(5, 16) * 3  # large z: the Tanh must still bound the output
    x = G(z)
    assert x.shape == (5, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1
    logits = D(x)
    assert logits.shape == (5,) and torch.isfinite(logits).all()
    # logits are unbounded scores, not probabilities (the loss applies the sigmoid stably)
    G.eval(), D.eval()
    assert G(z[:1]).shape == (1, 1, 28, 28)


def test_widths_and_depth_change_the_model():
    small = build_generator(ModelConfig(model="mlp", g_width=8, g_depth=2))
    big = build_generator(ModelConfig(model="mlp", g_width=16, g_depth=3))
    assert count_params(big) > count_params(small)
    d2 = build_discriminator(ModelConfig(model="dcgan", d_width=8, d_depth=2))
    d3 = build_discriminator(ModelConfig(model="dcgan", d_width=8, d_depth=3))
    assert count_params(d3) > count_params(d2)


def test_dcgan_init_is_normal_002():
    G = build_generator(ModelConfig(model="dcgan", g_width=32, init="dcgan"))
    w = G.net.net[2].weight  # the first ConvTranspose
    assert abs(w.std().item() - 0.02) < 0.002 and abs(w.mean().item()) < 0.002


def test_dropout_only_in_training_mode():
    D = build_discriminator(ModelConfig(model="mlp", d_width=8, dropout=0.5))
    x = torch.randn(4, 1, 28, 28)
    D.eval()
    assert torch.equal(D(x), D(x))
    D.train()
    torch.manual_seed(0)
    a = D(x)
    assert not torch.equal(a, D(x))


@pytest.mark.parametrize("model", ["mlp", "dcgan"])
def test_conditional_models_respect_labels(model):
    cfg = ModelConfig(model=model, z_dim=16, g_width=8, d_width=8, conditional=True)
    G, D = build_generator(cfg).eval(), build_discriminator(cfg).eval()
    z = torch.randn(4, 16)
    y = torch.tensor([0, 3, 7, 9])
    x = G(z, y)
    assert x.shape == (4, 1, 28, 28) and D(x, y).shape == (4,)
    # the label changes the image and the score: it is really used
    assert not torch.allclose(G(z, y), G(z, torch.tensor([1, 1, 1, 1])))
    with torch.no_grad():
        D.embed.weight.normal_()
    assert not torch.allclose(D(x, y), D(x, (y + 1) % 10))
    with pytest.raises(ValueError):
        G(z)


def test_spectral_norm_keeps_top_singular_value_near_one():
    torch.manual_seed(0)
    D = build_discriminator(ModelConfig(model="mlp", d_width=16, d_norm="spectral"))
    x = torch.randn(8, 1, 28, 28)
    for _ in range(20):  # power iterations run in training-mode forwards
        D(x)
    D.eval()
    linears = [m for m in D.modules() if isinstance(m, torch.nn.Linear)]
    assert linears
    for m in linears:
        sigma = torch.linalg.matrix_norm(m.weight.detach(), ord=2).item()
        assert abs(sigma - 1.0) < 0.05, sigma
