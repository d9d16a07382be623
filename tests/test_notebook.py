"""examples/quickstart.ipynb runs top to bottom in a real Jupyter kernel (the public API as a notebook
uses it)."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs_top_to_bottom(tmp_path):
    from mnistgan.evaluator.reference import load_reference

    load_reference("mnist")  # the session's cached test-set statistics (the kernel inherits MNISTGAN_CACHE)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # losses, final grid, comparison, the course snippet's plot
    assert "(16, 28, 28) uint8" in text
    assert "samples: FID" in text and "reference: FID" in text
    (run,) = (tmp_path / "runs").iterdir()
    for name in (
        "generator/model.safetensors",
        "final_grid.png",
        "metrics.json",
        "report/report.html",
        "report/report.pdf",
    ):
        assert (run / name).is_file(), name
