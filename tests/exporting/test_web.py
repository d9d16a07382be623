"""The web export (`mnistgan export --format web`) in a real browser: headless Chromium opens the page
from disk and over `python -m http.server`, and the canvas's pixels must equal `mnistgan generate`'s
within 2/255 for every model family, norm and activation; the seed field, the digit picker and the
interpolation slider redraw what `generate` and `interpolate` draw; no console error, no request
leaves the machine. The generators have randomised weights (exporting/toy_runs.py), so a wrong
layer shows; one real tiny training run goes through the command line.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib
from torch import nn

from mnistgan.cli import main
from mnistgan.errors import MnistganError
from mnistgan.exporting.api import export
from mnistgan.exporting.web import ASSET_FILES, ASSETS, SITE_FILES, TEST_N, TEST_SEED, write_web
from mnistgan.generator.interpolate import interpolation_images
from mnistgan.generator.sample import load_generator

from exporting.toy_runs import VARIANTS, Z_DIM, make_run
from helpers import TINY, call

TOL = 2  # uint8 levels
FAMILIES = {  # every family and wrapper, and the norms and activations of VARIANTS
    **VARIANTS,
    "clusters": dict(**VARIANTS["dcgan"], clusters=4),
    "conditional": dict(**VARIANTS["mlp"], conditional=True),
    "vae": dict(model="vae", g_width=4),
}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """name -> run folder with generator/ and its export/web/ site; the "mlp" run is a Fashion-MNIST one."""
    root = tmp_path_factory.mktemp("web_runs")
    runs = {}
    for name, model in FAMILIES.items():
        run = make_run(root / name, **model)
        if name == "mlp":
            config = run / "generator" / "config.json"
            meta = json.loads(config.read_text())
            meta["config"]["data"]["dataset"] = "fashion-mnist"
            config.write_text(json.dumps(meta))
        assert export(run, "web") == [run / "export" / "web"]
        runs[name] = run
    return runs


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real run of the default model (DCGAN), trained for 2 tiny epochs in this process."""
    run = tmp_path_factory.mktemp("web_trained") / "run"
    main(["train", "--run-dir", str(run), "--epochs", "2", "--limit", "32", "--sample-epochs", "1", *TINY])
    return run


@pytest.fixture(scope="module")
def http_root(runs):
    """`python -m http.server` on a free port of 127.0.0.1, serving the runs' folder."""
    root = next(iter(runs.values())).parent
    command = [
        sys.executable,
        "-u",
        "-m",
        "http.server",
        "0",
        "--bind",
        "127.0.0.1",
        "--directory",
        str(root),
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = (
            server.stdout.readline()
        )  # "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        port = re.search(r"port (\d+)", line)
        assert port, line
        yield f"http://127.0.0.1:{port.group(1)}"
    finally:
        server.terminate()
        server.wait(10)


def site_url(run: Path, hash: str = "") -> str:
    return (run / "export" / "web" / "index.html").as_uri() + hash


def open_page(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("document.getElementById('status').dataset.state !== 'loading'")
    assert page.get_attribute("#status", "data-state") == "ready", page.text_content("#status")


def tiles(page, canvas: str = "grid") -> np.ndarray:
    """The images on a canvas as uint8 (n, 28, 28), read back from its pixels (grey: R = G = B)."""
    got = page.evaluate(
        """(id) => { const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0,
                     c.width, c.height); const got = {w: c.width, h: c.height, n: +c.dataset.n,
                     cols: +c.dataset.cols, gap: +c.dataset.gap, rgba: ''}; let s = '';
                     for (let i = 0; i < d.data.length; i += 8192)
                       s += String.fromCharCode.apply(null, d.data.subarray(i, i + 8192));
                     return Object.assign(got, {rgba: btoa(s)}); }""",
        canvas,
    )
    rgba = np.frombuffer(base64.b64decode(got["rgba"]), np.uint8).reshape(got["h"], got["w"], 4)
    step = 28 + got["gap"]
    out = []
    for k in range(got["n"]):
        y, x = (k // got["cols"]) * step, (k % got["cols"]) * step
        tile = rgba[y : y + 28, x : x + 28]
        assert (tile[..., 3] == 255).all() and (tile[..., 0] == tile[..., 1]).all()
        assert (tile[..., 1] == tile[..., 2]).all()
        out.append(tile[..., 0])
    return np.stack(out)


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def draws(page) -> int:
    return int(page.get_attribute("#status", "data-draws"))


# ----------------------------------------------------------------------------- the numbers


@pytest.mark.parametrize("name", list(FAMILIES))
def test_the_page_draws_what_generate_draws(page, runs, name):
    gen = load_generator(runs[name])
    open_page(page, site_url(runs[name]))
    assert page.get_attribute("#status", "data-engine") == "wasm"
    assert max_diff(tiles(page), gen.generate(25, 504)) <= TOL
    # the bundled test vector: the page compares itself, and so does this test
    page.evaluate("location.hash = '#test'")
    page.wait_for_function("document.getElementById('status').dataset.draws === '2'")
    assert int(page.get_attribute("#status", "data-test-max-diff")) <= TOL
    z = np.random.RandomState(TEST_SEED).normal(size=[TEST_N, Z_DIM]).astype(np.float32)
    expected = np.clip(np.rint(gen.predict(z) * 255), 0, 255)
    assert expected.std() > 10  # the images are not flat, so the comparison means something
    assert max_diff(tiles(page), expected) <= TOL
    assert "passed" in page.text_content("#grid-hint")
    assert page.problems == []


def test_served_over_http_and_given_z_in_the_address(page, runs, http_root):
    run = runs["clusters"]
    url = f"{http_root}/{run.name}/export/web/index.html"
    open_page(page, url)
    assert max_diff(tiles(page), load_generator(run).generate(25, 504)) <= TOL
    z = np.random.RandomState(5).normal(size=[3, Z_DIM]).astype(np.float32)
    page.goto(url + "#z=" + ",".join(repr(float(v)) for v in z.ravel()))  # the same page: a hashchange
    page.wait_for_function("document.getElementById('grid').dataset.n === '3'")
    assert max_diff(tiles(page), np.rint(load_generator(run).predict(z) * 255)) <= TOL
    assert page.problems == []


def test_the_plain_js_kernel_draws_the_same(page, runs):
    """#engine=js: the fallback where WebAssembly SIMD is missing."""
    open_page(page, site_url(runs["dcgan-group-gelu"], "#engine=js"))
    assert page.get_attribute("#status", "data-engine") == "js"
    assert max_diff(tiles(page), load_generator(runs["dcgan-group-gelu"]).generate(25, 504)) <= TOL
    assert page.problems == []


def test_the_seed_is_numpys(page, runs):
    """The runtime's RandomState(seed).normal is numpy's, to the last bit, over the whole seed range."""
    open_page(page, site_url(runs["dcgan"]))
    for seed in (0, 504, 2**32 - 1):
        got = page.evaluate(f"Array.from(MnistganWeb.courseNoise(700, 3, {seed}))")
        assert got == np.random.RandomState(seed).normal(size=[700, 3]).ravel().tolist()


# ----------------------------------------------------------------------------- the controls


def test_the_seed_field_and_new_samples_match_generate(page, runs, tmp_path, capsys):
    run = runs["dcgan"]
    open_page(page, site_url(run))
    first = tiles(page)
    page.fill("#seed", "7")
    main(["generate", "--generator", str(run), "--seed", "7", "--n", "25", "--out", str(tmp_path / "s7.npz")])
    assert max_diff(tiles(page), np.load(tmp_path / "s7.npz")["images"]) <= TOL
    assert "--seed 7" in page.text_content("#grid-hint")
    before = draws(page)
    page.click("#new")
    assert draws(page) == before + 1
    seed = int(page.input_value("#seed"))
    assert seed != 7 and max_diff(tiles(page), load_generator(run).generate(25, seed)) <= TOL
    assert max_diff(tiles(page), first) > 50
    page.fill("#seed", "-3")  # refused: marked, nothing redrawn
    assert page.get_attribute("#seed", "aria-invalid") == "true" and draws(page) == before + 1
    assert page.problems == []


@pytest.mark.parametrize("name", ["dcgan", "clusters"])
def test_the_slider_walks_the_path_interpolate_draws(page, runs, name):
    """The strip is `mnistgan interpolate --rows 1 --steps 9` (a cluster generator's code blended too);
    the slider redraws the frame on 'input', and its ends are samples A and B of the grid."""
    gen = load_generator(runs[name])
    open_page(page, site_url(runs[name]))
    assert max_diff(tiles(page, "strip"), interpolation_images(gen, rows=1, steps=9)[0]) <= TOL
    grid, strip = tiles(page), tiles(page, "strip")

    def frame_at(value: int) -> np.ndarray:
        page.eval_on_selector(
            "#t", "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input')); }", value
        )
        return tiles(page, "frame")[0]

    middle = tiles(page, "frame")[0]
    assert max_diff(frame_at(60), strip[3]) <= TOL  # t = 60/160 = 3/8, the strip's fourth step
    assert max_diff(frame_at(60), middle) > 20
    assert max_diff(frame_at(0), grid[0]) <= TOL and max_diff(frame_at(160), grid[1]) <= TOL
    page.click("#grid", position={"x": 5, "y": 5})  # clicking samples picks the ends: A = sample 0 again ...
    box = page.locator("#grid").bounding_box()
    page.click("#grid", position={"x": box["width"] - 5, "y": box["height"] - 5})  # ... B = sample 24
    assert max_diff(frame_at(160), grid[24]) <= TOL
    assert page.locator(".mark").count() == 2
    assert page.problems == []


def test_the_digit_picker_draws_one_digit(page, runs):
    gen = load_generator(runs["conditional"])
    open_page(page, site_url(runs["conditional"]))
    all_digits = tiles(page)
    page.click("#digits button[data-digit='3']")
    assert page.get_attribute("#digits button[data-digit='3']", "aria-pressed") == "true"
    assert max_diff(tiles(page), gen.generate(25, 504, labels=3)) <= TOL
    assert max_diff(tiles(page), all_digits) > 50
    assert max_diff(tiles(page, "strip"), interpolation_images(gen, steps=9)[3]) <= TOL  # row 3: digit 3
    assert "--digit 3" in page.text_content("#grid-hint")
    assert page.problems == []


def test_unconditional_pages_have_no_digit_picker(page, runs):
    open_page(page, site_url(runs["vae"]))
    assert not page.is_visible("#digits")
    assert page.text_content("#run-name") == "vae"
    assert "VAE decoder" in page.text_content("#settings")


@pytest.mark.parametrize("width,height", [(390, 844), (1920, 1080)])
def test_phone_and_projector_layouts(browser, runs, width, height):
    """Nothing wider than a phone's screen; on a projector the whole grid is on screen at once."""
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=2)
    page = context.new_page()
    try:
        open_page(page, site_url(runs["conditional"]))
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        grid = page.locator("#grid").bounding_box()
        assert grid["width"] >= min(0.6 * width, 400) and grid["y"] + grid["height"] <= height
        for control in ("#new", "#seed", "#t", "#digits button[data-digit='9']"):
            box = page.locator(control).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, control
    finally:
        context.close()


def test_the_fashion_run_says_so(page, runs):
    open_page(page, site_url(runs["mlp"]))
    assert "Fashion-MNIST" in page.text_content("#settings")


# ----------------------------------------------------------------------------- the command and its errors


def test_cli_exports_a_trained_run(page, trained, tmp_path, capsys):
    code, out, _ = call(["export", "--generator", trained / "generator", "--format", "web"], capsys)
    site = trained / "export" / "web"
    assert code == 0 and f"Wrote {site.resolve()}" in out
    assert sorted(p.name for p in site.iterdir()) == sorted(SITE_FILES)
    open_page(page, site.joinpath("index.html").as_uri())
    assert page.text_content("#run-name") == trained.name
    assert page.title() == f"{trained.name} · mnistgan"
    assert "2 epochs" in page.text_content("#settings")
    assert max_diff(tiles(page), load_generator(trained).generate(25, 504)) <= TOL
    assert page.problems == []
    code, _, _ = call(["export", "--generator", trained, "--format", "web", "--out", site], capsys)
    assert code == 0  # an earlier export is replaced


def test_out_must_be_a_new_empty_or_site_folder(trained, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.md").write_text("mine")
    for out, message in [("file.txt", "is a file"), ("folder", "folder with other files")]:
        code, _, err = call(
            ["export", "--generator", trained, "--format", "web", "--out", tmp_path / out], capsys
        )
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "folder" / "notes.md").read_text() == "mine"


def test_a_layer_without_an_op_is_refused_in_one_line(runs, tmp_path):
    gen = load_generator(runs["mlp"])
    gen.module.net.net[1] = nn.Softplus()
    with pytest.raises(MnistganError, match="web export cannot convert a Softplus layer; use --format onnx"):
        write_web(gen, tmp_path / "site")
    gen.module = nn.Sequential(nn.Linear(Z_DIM, 784), nn.Tanh())  # not a model family mnistgan builds
    with pytest.raises(MnistganError, match="knows the mlp, dcgan and vae generators, not Sequential"):
        write_web(gen, tmp_path / "site")
    assert not (tmp_path / "site").exists()


def test_a_missing_model_js_is_reported_on_the_page(page, runs, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(runs["dcgan"] / "export" / "web", site)
    (site / "model.js").unlink()
    page.goto(site.joinpath("index.html").as_uri())
    page.wait_for_function("document.getElementById('status').dataset.state === 'error'")
    assert "model.js did not load" in page.text_content("#status")
    assert [p for p in page.problems if not p.startswith("console:")] == []


# ----------------------------------------------------------------------------- what ships


def test_the_inlined_kernel_is_conv_wat():
    wat2wasm = shutil.which("wat2wasm")
    if wat2wasm is None:
        pytest.skip("needs wat2wasm (apt-get install wabt)")
    wasm = subprocess.run(
        [wat2wasm, ASSETS / "conv.wat", "--output=-"], capture_output=True, check=True
    ).stdout
    js = (ASSETS / "mnistgan-web.js").read_text()
    assert f"'{base64.b64encode(wasm).decode()}'" in js


def test_the_assets_are_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for name in ASSET_FILES:
        assert any(Path("exporting/web_assets", name).match(p) for p in patterns["mnistgan"]), name
