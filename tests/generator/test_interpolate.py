"""Latent interpolation: the paths, the images on them, the grid PNG, the GIF and the CLI."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mnistgan.config import Config, ModelConfig
from mnistgan.errors import MnistganError
from mnistgan.generator.format import save_generator as export_generator
from mnistgan.generator.images import GRID_SCALE
from mnistgan.generator.interpolate import interpolate, interpolation_images, latent_grid, lerp, slerp
from mnistgan.generator.sample import Generator, course_noise, load_generator, to_uint8
from mnistgan.models import build_generator

from helpers import run_cli

Z_DIM = 8


def make_run(root: Path, model: str) -> Path:
    mc = ModelConfig(model=model, z_dim=Z_DIM, g_width=4, g_depth=1)
    torch.manual_seed(0)
    G = build_generator(mc)
    with (
        torch.no_grad()
    ):  # larger weights than the N(0, 0.02) init, so different z give visibly different images
        for m in G.modules():
            if isinstance(m, (nn.Linear, nn.ConvTranspose2d)):
                m.weight.normal_(0, 0.5)
    export_generator(G, Config(model=mc), root / "generator")
    return root


@pytest.fixture(scope="module", params=["mlp", "dcgan"])
def run(request, tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp(request.param) / "run", request.param)


# ----------------------------------------------------------------------------- paths in latent space


def test_paths_start_and_end_at_the_endpoints():
    a, b, t = np.array([1.0, 0.0, 2.0]), np.array([0.0, 3.0, -1.0]), np.linspace(0, 1, 7)
    for path in (lerp, slerp):
        z = path(a, b, t)
        assert z.shape == (7, 3)
        np.testing.assert_allclose(z[0], a, atol=1e-12)
        np.testing.assert_allclose(z[-1], b, atol=1e-12)


def test_slerp_keeps_the_norm_where_lerp_shrinks_it():
    a, b = np.array([3.0, 0.0]), np.array([0.0, 3.0])  # orthogonal, equal norms
    t = np.linspace(0, 1, 5)
    np.testing.assert_allclose(np.linalg.norm(slerp(a, b, t), axis=1), 3.0)
    assert np.linalg.norm(lerp(a, b, t)[2]) == pytest.approx(3.0 / np.sqrt(2))


def test_slerp_of_parallel_vectors_falls_back_to_lerp():
    a = np.array([1.0, 2.0])
    t = np.linspace(0, 1, 4)
    np.testing.assert_allclose(slerp(a, 2 * a, t), lerp(a, 2 * a, t))
    assert np.isfinite(slerp(a, np.zeros(2), t)).all()


def test_latent_grid_endpoints_come_from_the_seed():
    z = latent_grid(Z_DIM, rows=3, steps=5, seed=11)
    ends = course_noise(6, Z_DIM, 11)
    assert z.shape == (3, 5, Z_DIM)
    np.testing.assert_allclose(z[:, 0], ends[0::2], atol=1e-12)
    np.testing.assert_allclose(z[:, -1], ends[1::2], atol=1e-12)
    np.testing.assert_array_equal(z, latent_grid(Z_DIM, rows=3, steps=5, seed=11))
    with pytest.raises(MnistganError, match="unknown interpolation"):
        latent_grid(Z_DIM, 1, 2, method="cubic")


# ----------------------------------------------------------------------------- images and files


def test_images_at_the_ends_are_the_generators_images_of_the_endpoints(run):
    gen = load_generator(run)
    images = interpolation_images(gen, rows=3, steps=6, seed=5, method="lerp")
    assert images.shape == (3, 6, 28, 28) and images.dtype == np.uint8
    ends = course_noise(6, Z_DIM, 5)
    np.testing.assert_array_equal(images[:, 0], to_uint8(gen.predict(ends[0::2])))
    np.testing.assert_array_equal(images[:, -1], to_uint8(gen.predict(ends[1::2])))
    assert (images[:, 0] != images[:, -1]).any()  # a path actually moves


def test_interpolate_writes_the_grid_and_a_looping_gif(run, tmp_path):
    info = interpolate(run, tmp_path / "interp.png", steps=5, rows=2, seed=3)
    assert info["gif"] == tmp_path / "interp.gif" and info["frames"] == 2 * 5 - 2
    grid = np.asarray(Image.open(tmp_path / "interp.png"))
    assert grid.shape == (2 * 28 * GRID_SCALE, 5 * 28 * GRID_SCALE)
    images = interpolation_images(load_generator(run), rows=2, steps=5, seed=3)
    tile = (
        grid[::GRID_SCALE, ::GRID_SCALE].reshape(2, 28, 5, 28).transpose(0, 2, 1, 3)
    )  # -> (rows, steps, 28, 28)
    np.testing.assert_array_equal(tile, images)
    gif = Image.open(tmp_path / "interp.gif")
    assert gif.n_frames == 8 and gif.size == (2 * 28 * GRID_SCALE, 28 * GRID_SCALE)
    assert gif.info["loop"] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(out="grid.jpg"), "must end in .png"),
        (dict(gif="anim.png"), "must end in .gif"),
        (dict(steps=1), "--steps must be between 2"),
        (dict(rows=0), "--rows must be between 1"),
        (dict(method="cubic"), "unknown interpolation"),
        (dict(ms_per_frame=0), "--frame-ms must be positive"),
    ],
)
def test_bad_arguments_raise_one_line_errors(run, tmp_path, kwargs, message):
    kwargs = {"out": "grid.png", **kwargs}
    kwargs = {k: (tmp_path / v if k in ("out", "gif") else v) for k, v in kwargs.items()}
    with pytest.raises(MnistganError, match=message):
        interpolate(run, **kwargs)
    assert list(tmp_path.iterdir()) == []


class ToyConditional(nn.Module):
    """G(z, labels): the image's brightness encodes the label, so rows can be checked digit by digit."""

    def forward(self, z, labels):
        level = labels.float().div(9).mul(2).sub(1)  # digit 0 -> -1 (black), 9 -> +1 (white)
        return level.view(-1, 1, 1, 1).expand(-1, 1, 28, 28) + 0 * z.sum(1).view(-1, 1, 1, 1)


def test_conditional_generators_get_one_row_per_digit(tmp_path):
    cfg = SimpleNamespace(model=SimpleNamespace(z_dim=Z_DIM, conditional=True, channels=1, n_classes=10))
    images = interpolation_images(Generator(ToyConditional(), cfg, meta={}), rows=3, steps=4)
    assert images.shape == (10, 4, 28, 28)  # rows is ignored: all ten digits
    expected = to_uint8(np.arange(10) / 9.0)
    np.testing.assert_array_equal(images[:, :, 0, 0], np.repeat(expected[:, None], 4, axis=1))


def test_a_real_conditional_generator_gives_the_10_digit_grid(tmp_path):
    mc = ModelConfig(model="mlp", z_dim=Z_DIM, g_width=4, g_depth=1, conditional=True)
    torch.manual_seed(0)
    export_generator(build_generator(mc), Config(model=mc), tmp_path / "run" / "generator")
    info = interpolate(tmp_path / "run", tmp_path / "c.png", steps=3, rows=2)
    assert (info["rows"], info["steps"]) == (10, 3)
    gen = load_generator(tmp_path / "run")
    images = interpolation_images(gen, steps=3)
    z0 = np.repeat(course_noise(2, Z_DIM, 504)[:1], 10, axis=0)  # the shared path's start, once per digit
    np.testing.assert_array_equal(images[:, 0], to_uint8(gen.predict(z0, labels=np.arange(10))))


# ----------------------------------------------------------------------------- CLI


def test_cli_interpolate(tmp_path):
    run = make_run(tmp_path / "run", "dcgan")
    proc = run_cli(
        "interpolate",
        "--generator",
        run,
        "--out",
        tmp_path / "i.png",
        "--steps",
        "4",
        "--rows",
        "3",
        "--gif",
        tmp_path / "anim" / "i.gif",
        "--lerp",
    )
    assert "3x4 grid" in proc.stdout
    assert Image.open(tmp_path / "i.png").size == (4 * 28 * GRID_SCALE, 3 * 28 * GRID_SCALE)
    assert Image.open(tmp_path / "anim" / "i.gif").n_frames == 6
    bad = run_cli(
        "interpolate", "--generator", tmp_path / "nothing", "--out", tmp_path / "x.png", check=False
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "not found" in bad.stderr


def test_cluster_generator_paths_blend_the_cluster_codes(tmp_path):
    """A cluster generator reads its cluster off z_0; by default a path blends the endpoints'
    one-hot cluster codes linearly as z moves: the ends are exactly G(z_a) and G(z_b), each step
    is G's network on [z_t, (1 - t) e_a + t e_b]; --hard-clusters gives G(z_t) itself."""
    import torch.nn.functional as F

    mc = ModelConfig(model="mlp", z_dim=Z_DIM, g_width=4, g_depth=1, clusters=7)
    torch.manual_seed(0)
    G = build_generator(mc)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, nn.Linear):
                m.weight.normal_(0, 0.5)
    export_generator(G, Config(model=mc), tmp_path / "generator")
    gen = load_generator(tmp_path)
    rows, steps, seed = 6, 5, 3
    blended = interpolation_images(gen, rows, steps, seed)
    hard = interpolation_images(gen, rows, steps, seed, blend_clusters=False)
    z = torch.from_numpy(latent_grid(Z_DIM, rows, steps, seed).astype(np.float32))
    ends = course_noise(2 * rows, Z_DIM, seed)
    for images in (blended, hard):
        np.testing.assert_array_equal(images[:, 0], to_uint8(gen.predict(ends[0::2])))
        np.testing.assert_array_equal(images[:, -1], to_uint8(gen.predict(ends[1::2])))
    np.testing.assert_array_equal(
        hard.reshape(-1, 28, 28), to_uint8(gen.predict(z.reshape(-1, Z_DIM).numpy()))
    )
    c_a, c_b = G.clusters_of(z[:, 0]), G.clusters_of(z[:, -1])
    r = int(torch.nonzero(c_a != c_b)[0])  # a path between two clusters
    t = 0.5  # its middle step
    code = (1 - t) * F.one_hot(c_a[r], 7).float() + t * F.one_hot(c_b[r], 7).float()
    with torch.no_grad():
        middle = G.eval().net(torch.cat([z[r, 2], code])[None]).squeeze()
    want = to_uint8(((middle + 1) / 2).clamp(0, 1).numpy()).astype(
        int
    )  # one image vs a batch: 1 level apart at most
    assert np.abs(blended[r, 2].astype(int) - want).max() <= 1
    assert (blended[r, 1:-1] != hard[r, 1:-1]).any()
