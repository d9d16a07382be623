"""A report as a list of simple blocks (headings, paragraphs, tables, figures), and its HTML form:
one self-contained file, every image embedded as a data: URI. pdf.py draws the same blocks."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Optional, Union


@dataclass
class Heading:
    text: str
    level: int = 2  # 1 = title, 2 = section, 3 = subsection


@dataclass
class Para:
    text: str
    note: bool = False  # smaller, grey: how to read or reproduce something


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    widths: Optional[list[float]] = None  # relative column widths (PDF); None = equal
    align: str = ""  # one letter per column, l or r; default: first column left, others right


@dataclass
class Figure:
    data: bytes  # PNG (or GIF: HTML only; the PDF shows `still` instead)
    caption: str = ""
    width: float = 0.9  # share of the text width
    mime: str = "image/png"
    still: Optional[bytes] = None  # PNG used by the PDF for an animation


@dataclass
class Gallery:
    items: list[tuple[bytes, str]]  # (PNG, caption)
    columns: int = 4
    caption: str = ""


@dataclass
class Link:
    text: str
    href: str  # relative to the report folder


@dataclass
class PageBreak:
    pass


Block = Union[Heading, Para, Bullets, Table, Figure, Gallery, Link, PageBreak]


@dataclass
class Document:
    title: str
    subtitle: str = ""
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { margin-bottom: .2rem; } .subtitle { color: #555; margin-top: 0; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
figure.table { margin: .6rem 0 1.2rem; }
figure.table figcaption { font-weight: 600; color: inherit; font-size: .92rem; padding-bottom: .3rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .88rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; vertical-align: top; }
th { background: #f0f0f0; } td.l { min-width: 5rem; }
td.r { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1rem 0; } figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { font-size: .88rem; color: #444; overflow-wrap: break-word; }
.gallery { display: grid; gap: .6rem; grid-template-columns: repeat(var(--columns), minmax(0, 1fr)); }
.gallery figure { margin: 0; } .gallery img { width: 100%; }
.note { color: #555; font-size: .88rem; }
@media (max-width: 40rem) {
  body { margin: 1rem auto; }
  .gallery { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  figure img { width: 100% !important; }
}
"""


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def text_html(text: str) -> str:
    """Escaped text that may also wrap after a comma followed by a name (run names of a sweep:
    'dropout=0.3,label_smoothing=0.1,seed=1'); never inside a word or a number ('3,737')."""
    return re.sub(r",(?=[A-Za-z_])", ",<wbr>", html.escape(str(text)))


def _table_html(t: Table) -> str:
    align = t.align or "l" + "r" * (len(t.header) - 1)
    out = ['<figure class="table">']
    if t.caption:
        out.append(f"<figcaption>{text_html(t.caption)}</figcaption>")
    out.append('<div class="scroll"><table>')
    out.append("<tr>" + "".join(f"<th>{text_html(h)}</th>" for h in t.header) + "</tr>")
    for row in t.rows:
        cells = "".join(
            f'<td class="{"r" if align[i : i + 1] == "r" else "l"}">{text_html(c)}</td>'
            for i, c in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</table></div></figure>")
    return "\n".join(out)


def _block_html(b: Block) -> str:
    if isinstance(b, Heading):
        return f"<h{b.level}>{html.escape(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        return f'<p class="note">{text_html(b.text)}</p>' if b.note else f"<p>{text_html(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{text_html(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Table):
        return _table_html(b)
    if isinstance(b, Figure):
        return (
            f'<figure><img src="{data_uri(b.data, b.mime)}" style="width:{b.width * 100:.0f}%" '
            f'alt="{html.escape(b.caption)}"><figcaption>{text_html(b.caption)}</figcaption></figure>'
        )
    if isinstance(b, Gallery):
        items = "".join(
            f'<figure><img src="{data_uri(png)}" alt="{html.escape(cap)}">'
            f"<figcaption>{text_html(cap)}</figcaption></figure>"
            for png, cap in b.items
        )
        cap = f"<p><strong>{text_html(b.caption)}</strong></p>" if b.caption else ""
        return f'{cap}<div class="gallery" style="--columns: {b.columns}">{items}</div>'
    if isinstance(b, Link):
        return f'<p><a href="{html.escape(b.href, quote=True)}">{html.escape(b.text)}</a></p>'
    return ""  # PageBreak: the PDF only


def to_html(doc: Document) -> str:
    body = "\n".join(_block_html(b) for b in doc.blocks)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>\n"
        f'<h1>{html.escape(doc.title)}</h1>\n<p class="subtitle">{html.escape(doc.subtitle)}</p>\n'
        f"{body}\n</body></html>\n"
    )
