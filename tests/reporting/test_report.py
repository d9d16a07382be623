"""Reports: report.html (self-contained) and report.pdf on a sweep, a single run and bad input;
the phase finder on logs whose shape is known."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from mnistgan.config import load_config
from mnistgan.models import build_discriminator, build_generator, count_params
from mnistgan.reporting import report
from mnistgan.reporting.analysis import find_phases

from helpers import run_cli


def pdf_pages(path: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page\b", path.read_bytes()))


def test_sweep_report_html_and_pdf(tiny_sweep, tmp_path):
    info = report([tiny_sweep], tmp_path / "rep", log=lambda m: None)
    html = info["html"].read_text(encoding="utf-8")
    runs = [p for p in sorted(tiny_sweep.iterdir()) if (p / "config.json").is_file()]
    assert len(runs) == 4 and sorted(info["runs"]) == sorted(p.name for p in runs)
    import json

    for run in runs:
        fid = json.loads((run / "metrics.json").read_text())["samples"]["fid"]
        assert run.name in html and f"{fid:.1f}" in html  # every run, with its metrics
    for heading in (
        "1. Experiments performed",
        "2. Special skills: stabilisers",
        "3. Visualisation",
        "4. Discussion",
        "Best run and why",
        "Training phases and alarms",
        "Measured effect (paired runs)",
    ):
        assert f">{heading}<" in html
    sources = re.findall(r'<img src="([^"]*)"', html)
    assert len(sources) >= 8 and all(s.startswith("data:image/") for s in sources)  # self-contained
    assert any(s.startswith("data:image/gif;base64,") for s in sources)
    gif = re.search(r'<a href="([^"]+progress\.gif)"', html).group(1)
    assert (info["html"].parent / gif).resolve().is_file()  # the GIF link works from the report folder
    assert "dropout: 0 → 0.3" in html  # the paired stabiliser comparison (two seeds)
    assert re.search(r"dropout: 0 → 0\.3</td><td class=\"r\">2</td>", html)
    cfg = load_config(runs[0] / "config.json")
    assert f"{count_params(build_generator(cfg.model)):,}" in html
    assert f"{count_params(build_discriminator(cfg.model)):,}" in html
    assert "mean ± std over seeds" in html and "real held-out images (reference)" in html
    pdf = info["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert info["pages"] >= 5 and pdf_pages(info["pdf"]) == info["pages"]


def test_single_run_report_evaluates_it_first(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert not (run / "metrics.json").exists()
    proc = run_cli("report", run, "--out", tmp_path / "out", "--eval-n", "300", cwd=tmp_path)
    assert "Wrote" in proc.stdout and "pages" in proc.stdout
    assert (run / "metrics.json").is_file()  # scored on the way, like `mnistgan evaluate`
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "GAN training report: run" in html and "Final 5×5 grid" in html and "expected classes" in html
    assert "No two runs differ in a stabiliser alone" in html
    assert (tmp_path / "out" / "report.pdf").read_bytes()[:5] == b"%PDF-"


def test_report_bad_input_is_one_line(tmp_path):
    proc = run_cli("report", tmp_path / "nope", "--out", tmp_path / "o", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: ") and "not found" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    proc = run_cli("report", tmp_path / "empty", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "neither a run folder" in proc.stderr


def _log(loss_d, loss_g, d_acc):
    return [
        {
            "kind": "tick",
            "epoch": 1 + i // 10,
            "epoch_progress": (i + 1) / 10,
            "step": i + 1,
            "loss_d": float(a),
            "loss_g": float(b),
            "d_acc": float(c),
        }
        for i, (a, b, c) in enumerate(zip(loss_d, loss_g, d_acc))
    ]


def test_phases_find_warmup_plateau_and_alarms():
    t = np.arange(100)
    settle = np.exp(-t / 8)  # losses settle within about 25 ticks (2.5 epochs)
    p = find_phases(_log(1.2 + 0.8 * settle, 0.9 + 2.0 * settle, np.full(100, 0.6)))
    assert (
        p is not None and 1.0 < p.warmup_end < 4.0 and p.plateau_start is not None and p.plateau_start <= 4.0
    )
    assert not p.alarms
    acc = np.where(t >= 60, 0.99, 0.6)  # D wins from epoch 6 on while loss G climbs
    p = find_phases(_log(np.where(t >= 60, 0.1, 1.2), np.where(t >= 60, 3 + 0.1 * (t - 60), 0.9), acc))
    assert any("D dominated" in a and "had not recovered" in a for _, a in p.alarms)
    assert p.plateau_start is None or p.plateau_start > 6  # loss G still rising: no plateau before the climb
    assert find_phases(_log([1.0, 1.0], [1.0, 1.0], [0.5, 0.5])) is None  # too short to say anything


def test_settings_left_to_the_model_default_show_the_number():
    """The settings tables read "64 (default)" for a DCGAN's unset width, not "none"."""
    from mnistgan.config import ModelConfig
    from mnistgan.models import build_discriminator, build_generator
    from mnistgan.reporting.data import setting_text

    assert setting_text({"model": "dcgan", "g_width": None}, "g_width") == "64 (default)"
    assert setting_text({"model": "mlp", "d_depth": None}, "d_depth") == "3 (default)"
    assert setting_text({"model": "dcgan", "d_width": 16}, "d_width") == "16"
    # the VAE's decoder is the DCGAN generator: its width defaults to the DCGAN's
    assert setting_text({"model": "vae", "g_width": None}, "g_width") == "64 (default)"
    # the stated defaults are what the models build
    for model, width in (("dcgan", 64), ("mlp", 256)):
        explicit = ModelConfig(
            model=model,
            g_width=width,
            d_width=width,
            g_depth=3 if model == "mlp" else None,
            d_depth=3 if model == "mlp" else 2,
        )
        for build in (build_generator, build_discriminator):
            a, b = build(ModelConfig(model=model)), build(explicit)
            assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
