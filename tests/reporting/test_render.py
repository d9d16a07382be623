"""A report as its readers get it: the PDF's text as pypdf extracts it, and the HTML rendered by headless
Chromium at a desktop and a phone width."""

from __future__ import annotations

import html
import io
import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnistgan.config import load_config
from mnistgan.reporting import report
from mnistgan.reporting.document import Document, Figure, Gallery, Heading, Para, Table
from mnistgan.reporting.pdf import breakable, render_pdf  # breakable: run names wrap at commas
from mnistgan.sweepdir import pm

SECTIONS = [
    "1. Experiments performed",
    "2. Special skills: stabilisers",
    "3. Visualisation",
    "4. Discussion",
]

# every rendered table cell: its text, and on how many lines the browser laid it out
CELL_LINES = """() => [...document.querySelectorAll("td, th")].map(cell => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
    return [cell.textContent, tops.size];
})"""


@pytest.fixture(scope="module")
def sweep_report(tiny_sweep, tmp_path_factory) -> dict:
    info = report([tiny_sweep], tmp_path_factory.mktemp("rendered") / "rep", log=lambda m: None)
    runs = [p for p in sorted(tiny_sweep.iterdir()) if (p / "config.json").is_file()]
    return {**info, "run_dirs": runs}


def pdf_text(path: Path) -> list[list[str]]:
    """Each page's lines of text, as pypdf extracts them."""
    pypdf = pytest.importorskip("pypdf")
    return [page.extract_text().splitlines() for page in pypdf.PdfReader(str(path)).pages]


def test_pdf_text_holds_sections_settings_and_metrics(sweep_report):
    pages = pdf_text(sweep_report["pdf"])
    assert len(pages) == sweep_report["pages"]
    lines = [line.strip() for page in pages for line in page]
    # the four sections, in order, each a line of its own
    at = [lines.index(s) for s in SECTIONS]
    assert at == sorted(at)
    # the settings: shared by every run (name, value, meaning on one line), varied, and the seeds
    cfg = load_config(sweep_report["run_dirs"][0] / "config.json")
    assert cfg.optim.lr == 2e-4 and cfg.optim.batch_size == 16  # conftest.BASE
    shared = {
        "batch_size": "16",
        "lr": "0.0002",
        "z_dim": "8",
        "g_width": "4",
        "d_width": "4",
        "limit": "64",
        "epochs": "2",
        "loss": "bce",
        "optimizer": "adam",
        "g_activation": "relu",
        "d_activation": "leaky_relu",
    }
    for name, value in shared.items():
        assert any(line.startswith(f"{name} {value} ") for line in lines), name
    assert any(line.startswith("dropout 0, 0.3 ") for line in lines)  # the varied setting
    assert "Seeds: 0, 1. A seed fixes the initial weights, the noise and the data order." in lines
    # every run's metrics, as metrics.json holds them, in the report's format (best FID first)
    rows = []
    for run in sweep_report["run_dirs"]:
        s = json.loads((run / "metrics.json").read_text())["samples"]
        row = (
            f"{breakable(run.name)} {s['fid']:.1f} {s['inception_score']:.2f} {s['classes_covered']} "
            f"{s['confident_share']:.2f} {s['precision']:.2f} {s['recall']:.2f} {s['coverage']:.2f}"
        )
        assert row in lines, row
        rows.append((s["fid"], lines.index(row)))
    assert [i for _, i in sorted(rows)] == sorted(i for _, i in rows)
    # the sweep table: each dropout value's FID as mean ± sample std over the two seeds
    for dropout in ("0", "0.3"):
        fids = [
            json.loads((run / "metrics.json").read_text())["samples"]["fid"]
            for run in sweep_report["run_dirs"]
            if run.name.startswith(f"dropout={dropout},")
        ]
        assert len(fids) == 2
        expected = f"{dropout} 2/2 {pm(statistics.mean(fids), statistics.stdev(fids))} "
        assert any(line.startswith(expected) for line in lines), expected
    # setting names and column heads are never split across lines ("label_smoot" / "hing")
    words = {w for line in lines for w in line.split()}
    assert {*shared, "dropout", "g_activation", "instance_noise", "label_smoothing"} <= words
    # no page ends with a heading whose text starts on the next page
    headings = {
        html.unescape(h) for h in re.findall(r"<h[23]>(.*?)</h[23]>", sweep_report["html"].read_text())
    }
    assert set(SECTIONS) <= headings
    for number, page in enumerate(pages[:-1], 1):
        body = [line for line in page if "· page" not in line]  # the footer
        assert body and body[-1].strip() not in headings, f"page {number} ends with {body[-1]!r}"


def open_report(page, path: Path, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")


def assert_looks_right(page) -> None:
    """No error, every image decoded, not blank, nothing wider than the screen, no word broken."""
    assert page.problems == []
    images = page.evaluate(
        "() => [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(images) >= 8 and all(done and w > 0 and h > 0 for done, w, h in images), images
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("L"))
    assert shot.min() < 50 and shot.max() > 240  # text and images on a white page, not one colour
    assert 0.03 < (shot < 235).mean() < 0.9  # a reasonable share of it drawn on
    width = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], "the page is wider than the screen"
    # a cell wraps only between words: at spaces, hyphens, slashes, or commas before a name
    for text, lines in page.evaluate(CELL_LINES):
        pieces = len(re.split(r"\s+|(?<=[-/])|(?<=,)(?=[A-Za-z_])", text.strip()))
        assert lines <= pieces, f"{text!r} laid out on {lines} lines"


def test_html_report_in_chromium_desktop(sweep_report, page):
    open_report(page, sweep_report["html"], 1280)
    assert_looks_right(page)
    cells = page.evaluate(CELL_LINES)
    for name in ("g_activation", "label_smoothing", "instance_noise"):  # on one line (they were split)
        assert [lines for text, lines in cells if text == name] == [1], name


def test_html_report_in_chromium_phone(sweep_report, page):
    open_report(page, sweep_report["html"], 390)
    assert_looks_right(page)
    # tables wider than a phone scroll inside their own box instead of widening the page
    boxes = page.evaluate(
        "() => [...document.querySelectorAll('.scroll')].map(b => b.scrollWidth > b.clientWidth)"
    )
    assert any(boxes)
    galleries = page.evaluate(
        "() => [...document.querySelectorAll('.gallery')]"
        ".map(g => getComputedStyle(g).gridTemplateColumns.split(' ').length)"
    )
    assert galleries and max(galleries) <= 2  # final grids and samples two a row


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width), dtype=np.uint8)).save(
        out, "PNG"
    )
    return out.getvalue()


def test_pdf_layout_keeps_headings_with_figures_and_words_whole(tmp_path):
    """Wherever a heading falls, its figure is on the same page; the columns of a wide table are as wide
    as their longest word; a gallery's long captions print whole."""
    picture = png(300, 300)
    heads = ["dropout", "label_smoothing", "seeds done", "FID ↓", "IS ↑", "digits", "precision", "recall"]
    for filler in range(12, 34, 3):  # the heading at every height of the page's lower half
        doc = Document("layout")
        doc.add(*[Para(f"line {i}") for i in range(filler)])
        doc.add(Heading("Run under test", 3), Figure(picture, "the figure", width=0.62))
        doc.add(Table(heads, [["0.3", "0.1", "2/2", "137.7 ± 0.1", "1.00 ± 0.00", "1", "0.000", "0.000"]]))
        caption = "dropout=0.3,label_smoothing=0.1,seed=1 · FID 137.6"
        doc.add(Gallery([(picture, caption)] * 4, columns=4))
        render_pdf(doc, tmp_path / "layout.pdf")
        pages = pypdf_reader(tmp_path / "layout.pdf").pages
        holding = [p for p in pages if "Run under test" in p.extract_text()]
        assert len(holding) == 1 and len(holding[0].images) >= 1, f"{filler} lines: heading without figure"
        words = {w for p in pages for w in p.extract_text().split()}
        assert {"label_smoothing", "seeds", "precision", "label_smoothing=0.1,", "seed=1"} <= words


def pypdf_reader(path: Path):
    return pytest.importorskip("pypdf").PdfReader(str(path))
