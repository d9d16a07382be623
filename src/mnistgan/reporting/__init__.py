"""Reports on runs and sweeps: report.html (self-contained) and report.pdf.

    report(paths, out="report", ...) -> {"html", "pdf", "pages", "runs", "best"}   (`mnistgan report`)

Modules: data.py (the runs and sweeps found, read through rundir/sweepdir), analysis.py (phases,
alarms, effects), arch.py (layer tables), figures.py, visual.py (section 3), document.py (blocks and
HTML), pdf.py, build.py (the sections and `report`).
"""

from .build import report

__all__ = ["report"]
