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


def _figure_size(pdf, b: Figure) -> tuple[float, float]:
    """Width and height (mm) of a figure's image: its share of the text width, at most a page tall."""
    png = b.still if b.mime != "image/png" else b.data
    if png is None:
        return 0.0, 0.0
    iw, ih = _png_size(png)
    w = pdf.epw * b.width
    h = w * ih / iw
    max_h = pdf.page_break_trigger - MARGIN - 12  # a full page minus room for the caption
    if h > max_h:
        w, h = w * max_h / h, max_h
    return w, h


def _start_height(pdf, b) -> float:
    """mm that the start of block `b` needs on the page of the heading above it: a figure whole,
    a gallery's caption and first row, a table's caption, header and first rows, a few lines of text."""
    if isinstance(b, Figure):
        return _figure_size(pdf, b)[1] + 10
    if isinstance(b, Gallery) and b.items:
        cw = (pdf.epw - 4.0 * (b.columns - 1)) / b.columns
        return max(cw * h / w for w, h in (_png_size(png) for png, _ in b.items[: b.columns])) + 20
    if isinstance(b, Table):
        return 30
    if isinstance(b, (Para, Bullets)):
        return 15
    return 0


def _heading(pdf, b: Heading, following=None) -> None:
    size = {1: 18, 2: 14, 3: 11.5}.get(b.level, 11)
    own = size * 0.5 * (1 + len(b.text) // 80) + 8
    # keep a heading with (the start of) what follows it, as far as a fresh page can hold both
    fresh = pdf.page_break_trigger - MARGIN
    need = max(70 if b.level <= 2 else 55, own + min(_start_height(pdf, following), fresh - own - 1))
    if _room(pdf) < need and pdf.get_y() > MARGIN + 1:
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


PAD_X = 1.2  # mm of padding left and right of a table cell's text


def _words_width(pdf, texts: list[str], size: float, bold: bool) -> tuple[float, float]:
    """The widest single word and the widest whole text among `texts` (mm, at `size` points)."""
    pdf.set_font(FONT, "B" if bold else "", size)
    word = max((pdf.get_string_width(w) for text in texts for w in text.split()), default=0.0)
    whole = max((pdf.get_string_width(text) for text in texts), default=0.0)
    return word, whole


def column_widths(pdf, header: list[str], rows: list[list[str]], size: float, share=None) -> list[float]:
    """Column widths (mm, filling the text width) that wrap cells between words only: each column at
    least as wide as its longest word (header included); the rest of the width split by `share`
    (relative widths) or, without it, by how long each column's texts are."""
    n = len(header)
    least, natural = [], []
    for i in range(n):
        hw, hwhole = _words_width(pdf, [header[i]], size, bold=True)
        cw, cwhole = _words_width(pdf, [row[i] for row in rows if i < len(row)], size, bold=False)
        least.append(max(hw, cw) + 2 * PAD_X + 0.6)
        natural.append(min(max(hwhole, cwhole), pdf.epw / 2) + 2 * PAD_X + 0.6)
    weights = list(share) if share else natural
    widths = [pdf.epw * w / sum(weights) for w in weights]
    fixed: set[int] = set()
    for _ in range(n):  # raise the columns below their least width; take it from the others
        short = [i for i in range(n) if i not in fixed and widths[i] < least[i]]
        if not short:
            break
        fixed.update(short)
        left = pdf.epw - sum(least[i] for i in fixed)
        if left <= 0:  # the longest words alone overfill the width: the caller picks a smaller font
            return least
        free = sum(weights[i] for i in range(n) if i not in fixed)
        for i in range(n):
            widths[i] = least[i] if i in fixed else left * weights[i] / max(free, 1e-9)
    return widths


def _table(pdf, t: Table) -> None:
    if _room(pdf) < 30:
        pdf.add_page()
    if t.caption:
        pdf.set_font(FONT, "B", 9)
        pdf.multi_cell(0, 4.6, breakable(t.caption), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(0.5)
    n = len(t.header)
    header = [str(h) for h in t.header]
    rows = [[breakable(str(c)) for c in row] for row in t.rows]
    size = 8 if n <= 6 else 7 if n <= 9 else 6.2
    widths = column_widths(pdf, header, rows, size, t.widths)
    while sum(widths) > pdf.epw + 0.01 and size > 5.5:  # the longest words do not fit side by side
        size -= 0.4
        widths = column_widths(pdf, header, rows, size, t.widths)
    widths = [w * pdf.epw / sum(widths) for w in widths]
    pdf.set_font(FONT, "", size)
    align = t.align or "l" + "r" * (n - 1)
    aligns = tuple("RIGHT" if align[i : i + 1] == "r" else "LEFT" for i in range(n))
    with pdf.table(
        col_widths=tuple(widths),
        text_align=aligns,
        line_height=size * 0.5,
        padding=(0.8, PAD_X),
        headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)),
        wrapmode="WORD",
        v_align="TOP",
        width=pdf.epw,
    ) as table:
        table.row(header)
        for row in rows:
            table.row(row)
    pdf.ln(3)


def _image(pdf, png: bytes, x: float, y: float, w: float, h: float) -> None:
    pdf.image(io.BytesIO(png), x=x, y=y, w=w, h=h)


def _figure(pdf, b: Figure) -> None:
    png = b.still if b.mime != "image/png" else b.data
    if png is None:
        return
    w, h = _figure_size(pdf, b)
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
        pdf.set_font(FONT, "", 7)
        cap_lines = max(
            len(pdf.multi_cell(cw, 3.4, breakable(cap), align="C", dry_run=True, output="LINES"))
            for _, cap in row
        )
        row_h = max(heights) + 0.8 + 3.4 * cap_lines + 3
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
    for k, b in enumerate(doc.blocks):
        if isinstance(b, Heading):
            _heading(pdf, b, doc.blocks[k + 1] if k + 1 < len(doc.blocks) else None)
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
