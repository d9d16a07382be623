"""The PDF form of a report (fpdf2, pure Python): A4 portrait, DejaVu Sans from matplotlib's own
font folder (so ±, ×, → and Greek letters print on any machine), page numbers in the footer."""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib
from fpdf import FPDF
from fpdf.fonts import FontFace
from PIL import Image

from ..files import write_bytes
from .document import Bullets, Document, Figure, Gallery, Heading, Link, PageBreak, Para, Table

MARGIN = 15.0  # mm
FONT = "DejaVu"


def _fonts_dir() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _pdf_class():
    class ReportPDF(FPDF):
        title_text = ""

        def footer(self) -> None:
            self.set_y(-11)
            self.set_font(FONT, "", 8)
            self.set_text_color(120)
            self.cell(0, 5, f"{self.title_text}  ·  page {self.page_no()}/{{nb}}", align="C")
            self.set_text_color(0)

    return ReportPDF


def _new_pdf(title: str):
    pdf = _pdf_class()(orientation="P", unit="mm", format="A4")
    pdf.title_text = title
    fonts = _fonts_dir()
    pdf.add_font(FONT, "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font(FONT, "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.add_font(FONT, "I", str(fonts / "DejaVuSans-Oblique.ttf"))
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_title(title)
    pdf.set_creator("mnistgan report")
    pdf.add_page()
    return pdf


def breakable(text: str) -> str:
    """Let long names wrap in narrow cells: a space after each comma of a word longer than 24 characters
    ('lr=0.0001,model=mlp,seed=0' -> 'lr=0.0001, model=mlp, seed=0')."""
    return " ".join(w.replace(",", ", ") if len(w) > 24 else w for w in text.split(" "))


def _room(pdf) -> float:
    """mm left above the bottom margin on this page."""
    return pdf.page_break_trigger - pdf.get_y()


def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def _heading(pdf, b: Heading) -> None:
    size = {1: 18, 2: 14, 3: 11.5}.get(b.level, 11)
    if _room(pdf) < (70 if b.level <= 2 else 55):  # keep a heading with (the start of) what follows it
        pdf.add_page()
    pdf.ln(4 if b.level == 2 else 2)
    pdf.set_font(FONT, "B", size)
    pdf.multi_cell(0, size * 0.5, b.text, new_x="LMARGIN", new_y="NEXT")
    if b.level == 2:
        pdf.set_draw_color(190)
        pdf.line(MARGIN, pdf.get_y() + 0.5, pdf.w - MARGIN, pdf.get_y() + 0.5)
        pdf.set_draw_color(0)
    pdf.ln(2)


def _para(pdf, text: str, note: bool = False) -> None:
    pdf.set_font(FONT, "I" if note else "", 8.5 if note else 9.5)
    if note:
        pdf.set_text_color(90)
    pdf.multi_cell(0, 4.6 if not note else 4.0, text, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0)
    pdf.ln(1.5)


def _bullets(pdf, b: Bullets) -> None:
    pdf.set_font(FONT, "", 9.5)
    for item in b.items:
        pdf.set_x(MARGIN + 2)
        pdf.cell(4, 4.6, "•")
        pdf.multi_cell(0, 4.6, item, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(0.6)
    pdf.ln(1)


def _table(pdf, t: Table) -> None:
    if _room(pdf) < 30:
        pdf.add_page()
    if t.caption:
        pdf.set_font(FONT, "B", 9)
        pdf.multi_cell(0, 4.6, breakable(t.caption), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(0.5)
    n = len(t.header)
    size = 8 if n <= 6 else 7 if n <= 9 else 6.2
    pdf.set_font(FONT, "", size)
    align = t.align or "l" + "r" * (n - 1)
    aligns = tuple("RIGHT" if align[i : i + 1] == "r" else "LEFT" for i in range(n))
    widths = tuple(t.widths) if t.widths else tuple([1.0] * n)
    with pdf.table(
        col_widths=widths,
        text_align=aligns,
        line_height=size * 0.5,
        padding=(0.8, 1.2),
        headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
        wrapmode="WORD",
        v_align="TOP",
        width=pdf.epw,
    ) as table:
        table.row([str(h) for h in t.header])
        for row in t.rows:
            table.row([breakable(str(c)) for c in row])
    pdf.ln(3)


def _image(pdf, png: bytes, x: float, y: float, w: float, h: float) -> None:
    pdf.image(io.BytesIO(png), x=x, y=y, w=w, h=h)


def _figure(pdf, b: Figure) -> None:
    png = b.still if b.mime != "image/png" else b.data
    if png is None:
        return
    iw, ih = _png_size(png)
    w = pdf.epw * b.width
    h = w * ih / iw
    max_h = pdf.page_break_trigger - MARGIN - 12  # a full page minus room for the caption
    if h > max_h:
        w, h = w * max_h / h, max_h
    if _room(pdf) < h + 10:
        pdf.add_page()
    x = MARGIN + (pdf.epw - w) / 2
    _image(pdf, png, x, pdf.get_y(), w, h)
    pdf.set_y(pdf.get_y() + h + 1.5)
    if b.caption:
        pdf.set_font(FONT, "I", 8.5)
        pdf.set_text_color(70)
        pdf.multi_cell(0, 4, b.caption, align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0)
    pdf.ln(3)


def _gallery(pdf, g: Gallery) -> None:
    gap = 4.0
    cw = (pdf.epw - gap * (g.columns - 1)) / g.columns
    first = max(cw * h / w for w, h in (_png_size(png) for png, _ in g.items[: g.columns])) if g.items else 0
    if g.caption:
        if _room(pdf) < first + 20:  # keep the caption with the first row
            pdf.add_page()
        _para(pdf, g.caption)
    for start in range(0, len(g.items), g.columns):
        row = g.items[start : start + g.columns]
        heights = [cw * s[1] / s[0] for s in (_png_size(png) for png, _ in row)]
        cap_lines = max(1 + len(cap) // max(1, int(cw / 1.6)) for _, cap in row)
        row_h = max(heights) + 3.6 * cap_lines + 3
        if _room(pdf) < row_h:
            pdf.add_page()
        y = pdf.get_y()
        for k, ((png, cap), h) in enumerate(zip(row, heights)):
            x = MARGIN + k * (cw + gap)
            _image(pdf, png, x, y, cw, h)
            pdf.set_xy(x, y + h + 0.8)
            pdf.set_font(FONT, "", 7)
            pdf.multi_cell(cw, 3.4, breakable(cap), align="C")
        pdf.set_xy(MARGIN, y + row_h)
    pdf.ln(2)


def render_pdf(doc: Document, path: str | os.PathLike) -> int:
    """Write the document as a PDF; returns the number of pages."""
    pdf = _new_pdf(doc.title)
    pdf.set_font(FONT, "B", 18)
    pdf.multi_cell(0, 9, doc.title, new_x="LMARGIN", new_y="NEXT")
    if doc.subtitle:
        _para(pdf, doc.subtitle, note=True)
    for b in doc.blocks:
        if isinstance(b, Heading):
            _heading(pdf, b)
        elif isinstance(b, Para):
            _para(pdf, b.text, b.note)
        elif isinstance(b, Bullets):
            _bullets(pdf, b)
        elif isinstance(b, Table):
            _table(pdf, b)
        elif isinstance(b, Figure):
            _figure(pdf, b)
        elif isinstance(b, Gallery):
            _gallery(pdf, b)
        elif isinstance(b, Link):
            _para(
                pdf,
                f"{b.text}: {b.href} (path relative to this report's folder; the HTML version links it)",
                note=True,
            )
        elif isinstance(b, PageBreak):
            pdf.add_page()
    pages = pdf.page_no()
    write_bytes(path, bytes(pdf.output()))
    return pages
