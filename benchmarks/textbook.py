"""The course material's GAN loops, written as typical course code does, for side-by-side runs.

torchvision MNIST + ToTensor/Normalize + DataLoader(shuffle) in fp32, Sigmoid + BCELoss,
Adam 2e-4 (betas 0.5, 0.999), a fresh G forward for the G step, D's weights not frozen.
The architectures are mnistgan's own registry models, run as course code runs them (`course_model`:
the same layers in a plain nn.Sequential, torch's nn.Dropout), so that a comparison isolates
what mnistgan adds: its loop and its training-only formulations of the same functions.
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from mnistgan.config import ModelConfig
from mnistgan.data import bundled_dir
from mnistgan.models import build_discriminator, build_generator
from mnistgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from mnistgan.models.mlp import MLPDiscriminator, MLPGenerator

# the course setups, named like mnistgan's presets
SETUPS = {
    "textbook-mlp": dict(
        model=ModelConfig(model="mlp", g_activation="leaky_relu", dropout=0.3, init="default"),
        loss="bce",
        batch_size=64,
    ),
    "textbook-dcgan": dict(model=ModelConfig(model="dcgan"), loss="bce", batch_size=64),
    "textbook-mlp-128": dict(
        model=ModelConfig(model="mlp", g_activation="leaky_relu", dropout=0.3, init="default"),
        loss="bce",
        batch_size=128,
    ),
    "textbook-dcgan-128": dict(model=ModelConfig(model="dcgan"), loss="bce", batch_size=128),
    "textbook-mlp-wgan-gp": dict(
        model=ModelConfig(model="mlp", g_activation="leaky_relu", init="default", g_norm="batch"),
        loss="wgan-gp",
        batch_size=64,
    ),
}


def torchvision_mnist_root() -> Path:
    """torchvision's MNIST layout (root/MNIST/raw/*-ubyte) from the bundled files, offline."""
    root = Path(tempfile.gettempdir()) / "mnistgan-textbook-mnist"
    raw = root / "MNIST" / "raw"
    if not (raw / "t10k-labels-idx1-ubyte").exists():
        raw.mkdir(parents=True, exist_ok=True)
        for gz in bundled_dir().glob("*.gz"):
            with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return root


def loader(batch_size: int) -> torch.utils.data.DataLoader:
    import torchvision
    from torchvision import transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    ds = torchvision.datasets.MNIST(str(torchvision_mnist_root()), train=True, download=False, transform=tf)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True)


def course_model(model: nn.Module) -> nn.Sequential:
    """An unconditional registry G or D as course code writes it: the same layer objects (the same
    parameters, the same function) in one nn.Sequential with torch's nn.Dropout, without
    mnistgan's training-only formulations (models/dcgan.py, models/dropout.py)."""
    net = model.net  # the Unconditional wrapper's model
    if isinstance(net, MLPGenerator):
        layers = list(net.net) + [nn.Unflatten(1, (1, 28, 28))]
    elif isinstance(net, DCGANGenerator):
        layers = [net.fc, nn.Unflatten(1, (2 * net.w, 7, 7))] + list(net.net)
    elif isinstance(net, MLPDiscriminator):
        layers = [nn.Flatten()] + list(net.net) + [net.fc, nn.Flatten(0)]
    elif isinstance(net, DCGANDiscriminator):
        layers = list(net.net) + [nn.Flatten(), net.fc, nn.Flatten(0)]
    else:
        raise TypeError(f"no course form of {type(net).__name__}")
    return nn.Sequential(*[nn.Dropout(m.p) if isinstance(m, nn.Dropout) else m for m in layers])


def train_textbook(
    setup: str,
    seconds: float,
    seed: int = 0,
    on_tick: Optional[Callable[[nn.Module, float, int], None]] = None,
    tick_every: float = 60.0,
    batch_size: Optional[int] = None,
) -> dict:
    """Train for `seconds` of wall time; call on_tick(G, elapsed, images) every tick_every seconds.

    Returns {"images": N, "seconds": T, "images_per_s": N/T, "G": G}. Time spent in on_tick
    (evaluation) is not counted as training time. batch_size: the setup's own unless given.
    """
    s = SETUPS[setup]
    torch.manual_seed(seed)
    G, D = course_model(build_generator(s["model"])), course_model(build_discriminator(s["model"]))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce, sig = nn.BCELoss(), nn.Sigmoid()
    z_dim, wgan = s["model"].z_dim, s["loss"] == "wgan-gp"
    images, train_time, next_tick, step = 0, 0.0, tick_every, 0
    t0 = time.monotonic()
    while train_time < seconds:
        for real, _ in loader(batch_size or s["batch_size"]):
            b = real.shape[0]
            ones, zeros = torch.ones(b), torch.zeros(b)
            # --- D step
            fake = G(torch.randn(b, z_dim))
            if wgan:
                loss_d = D(fake.detach()).mean() - D(real).mean() + 10 * _gp(D, real, fake.detach())
            else:
                loss_d = bce(sig(D(real)), ones) + bce(sig(D(fake.detach())), zeros)
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            step += 1
            # --- G step (WGAN-GP: every 5 critic steps)
            if not wgan or step % 5 == 0:
                fake = G(torch.randn(b, z_dim))
                loss_g = -D(fake).mean() if wgan else bce(sig(D(fake)), ones)
                opt_g.zero_grad()
                loss_g.backward()
                opt_g.step()
            images += b
            train_time = time.monotonic() - t0
            if on_tick is not None and train_time >= next_tick:
                t_eval = time.monotonic()
                on_tick(G, train_time, images)
                t0 += time.monotonic() - t_eval  # evaluation time is not training time
                next_tick += tick_every
            if train_time >= seconds:
                break
    return {"images": images, "seconds": train_time, "images_per_s": images / train_time, "G": G}


def _gp(D, real, fake):
    eps = torch.rand(real.shape[0], 1, 1, 1)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    return ((g.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
