"""Your own G and D (models/custom.py): the course template's shapes adapted without editing the
classes, constructor arguments by name, and one clear error for each kind of bad class."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch import nn

from mnistgan.config import ModelConfig
from mnistgan.errors import MnistganError
from mnistgan.models import build_models

# written exactly in the course template's style: nn.Sequential of Linear, LeakyReLU, BatchNorm1d,
# Dropout, Tanh / Sigmoid; G returns flat images, D takes them flat and returns probabilities
COURSE = textwrap.dedent("""
    import torch
    from torch import nn


    class Generator(nn.Module):
        def __init__(self, z_dim=100, img_dim=784, hidden=256):
            super().__init__()
            self.gen = nn.Sequential(
                nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2), nn.BatchNorm1d(hidden),
                nn.Linear(hidden, hidden * 2), nn.LeakyReLU(0.2), nn.BatchNorm1d(hidden * 2),
                nn.Linear(hidden * 2, img_dim), nn.Tanh())

        def forward(self, x):
            return self.gen(x)


    class Discriminator(nn.Module):
        def __init__(self, img_dim=784, hidden=256):
            super().__init__()
            self.disc = nn.Sequential(
                nn.Linear(img_dim, hidden * 2), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                nn.Linear(hidden * 2, hidden), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                nn.Linear(hidden, 1), nn.Sigmoid())

        def forward(self, x):
            return self.disc(x)
""")


def write(tmp_path, text: str, name: str = "mine.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def config(path, classes="Generator,Discriminator", **kw) -> ModelConfig:
    return ModelConfig(model=f"{path}:{classes}", **kw)


def test_the_course_template_is_adapted_without_editing_it(tmp_path):
    path = write(tmp_path, COURSE)
    built = build_models(config(path, model_args={"hidden": 16}, z_dim=12))
    G, D = built.G, built.D
    assert G.g.gen[0].in_features == 12 and G.g.gen[0].out_features == 16  # z_dim and --model-arg by name
    assert " ".join(built.notes).count("flat") == 2 and "Sigmoid" in " ".join(built.notes)
    x = G(torch.randn(5, 12))
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    logits = D(x)
    assert logits.shape == (5,)
    # D's Sigmoid is read at its input: the logits give back D's own probabilities
    D.eval()
    probs = torch.sigmoid(D(x))
    assert isinstance(D.d.disc[-1], nn.Identity) and torch.all((probs > 0) & (probs < 1))


def test_image_shaped_classes_with_labels_and_a_sigmoid_generator(tmp_path):
    path = write(
        tmp_path,
        """
        import torch
        from torch import nn

        class G(nn.Module):
            def __init__(self, z_dim, n_classes):
                super().__init__()
                self.embed = nn.Embedding(n_classes, 4)
                self.fc = nn.Linear(z_dim + 4, 784)

            def forward(self, z, labels):
                return torch.sigmoid(self.fc(torch.cat([z, self.embed(labels)], 1))).view(-1, 1, 28, 28)

        class D(nn.Module):
            def __init__(self, num_classes):
                super().__init__()
                self.conv = nn.Conv2d(1, 4, 4, 2, 1)
                self.fc = nn.Linear(4 * 14 * 14, num_classes)

            def forward(self, x, labels):
                return self.fc(self.conv(x).flatten(1)).gather(1, labels[:, None])
    """,
    )
    built = build_models(config(path, "G,D", conditional=True, z_dim=8))
    y = torch.tensor([3, 7])
    x = built.G(torch.randn(2, 8), y)
    assert x.shape == (2, 1, 28, 28) and x.min() >= -1 and x.max() <= 1  # [0, 1] mapped to [-1, 1]
    assert built.D(x, y).shape == (2,)
    assert not any("Sigmoid" in n for n in built.notes if n.startswith("D"))  # a functional sigmoid: kept


@pytest.mark.parametrize(
    "source, classes, message",
    [
        ("import torch\nthis is not python", "G,D", "cannot import"),
        ("from torch import nn\nclass G(nn.Module): pass", "G,D", "has no class D"),
        ("from torch import nn\nclass G(nn.Module): pass\nclass D: pass", "G,D", "has no nn.Module class D"),
        (
            "from torch import nn\nclass G(nn.Module):\n def __init__(self, z_dim):\n"
            "  raise ValueError('no')\nclass D(nn.Module): pass",
            "G,D",
            r"G\(z_dim=100\) failed: ValueError: no",
        ),
        (
            "from torch import nn\nclass G(nn.Module):\n def __init__(self, z_dim, width):\n"
            "  super().__init__()\nclass D(nn.Module): pass",
            "G,D",
            "G needs argument 'width': give --model-arg width=VALUE",
        ),
    ],
)
def test_classes_that_cannot_be_built_get_one_line(tmp_path, source, classes, message):
    path = write(tmp_path, source)
    with pytest.raises(MnistganError, match=message) as e:
        build_models(config(path, classes))
    assert "\n" not in str(e.value)


def test_a_missing_file_and_an_unknown_model_arg(tmp_path):
    with pytest.raises(MnistganError, match="not found"):
        build_models(config(tmp_path / "nope.py"))
    path = write(tmp_path, COURSE)
    with pytest.raises(MnistganError, match="Generator takes no argument 'depth'"):
        build_models(config(path, model_args={"depth": 3}))


WRONG_SIZE = (
    "torch.zeros(z.shape[0], 100)",
    "x.flatten(1)[:, :1]",
    r"MyG returned \(4, 100\) for 4 z; expected",
)
WRONG_RANGE = (
    "torch.full((z.shape[0], 784), 3.0)",
    "x.flatten(1)[:, :1]",
    r"MyG's images lie in \[3, 3\]; end it",
)
NOT_ONE_VALUE = (
    "torch.zeros(z.shape[0], 784)",
    "x.flatten(1)[:, :10]",
    r"MyD returned \(4, 10\) for 4 images",
)


@pytest.mark.parametrize("g_out, d_out, message", [WRONG_SIZE, WRONG_RANGE, NOT_ONE_VALUE])
def test_wrong_output_shapes_and_ranges_name_the_class(tmp_path, g_out, d_out, message):
    path = write(
        tmp_path,
        f"""
        import torch
        from torch import nn

        class MyG(nn.Module):
            def forward(self, z):
                return {g_out}

        class MyD(nn.Module):
            def forward(self, x):
                return {d_out}
    """,
    )
    with pytest.raises(MnistganError, match=message):
        build_models(config(path, "MyG,MyD"))


def test_labels_are_checked_against_conditional(tmp_path):
    path = write(tmp_path, COURSE)
    with pytest.raises(MnistganError, match="Generator.forward must take the labels too"):
        build_models(config(path, conditional=True))


def test_module_instances_get_the_same_adapters():
    G = nn.Sequential(nn.Linear(8, 784), nn.Tanh())
    D = nn.Sequential(nn.Flatten(), nn.Linear(784, 1))
    built = build_models(ModelConfig(model="__main__:Sequential,Sequential", z_dim=8), instances=(G, D))
    assert built.G(torch.randn(3, 8)).shape == (3, 1, 28, 28) and built.D(
        torch.zeros(3, 1, 28, 28)
    ).shape == (3,)
    with pytest.raises(MnistganError, match="must be an nn.Module"):
        build_models(ModelConfig(model="__main__:Sequential,Sequential"), instances=(G, "D"))
