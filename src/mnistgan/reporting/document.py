"""A report as a list of simple blocks (headings, paragraphs, tables, figures), and its HTML form:
one self-contained file, every image embedded as a data: URI. pdf.py draws the same blocks."""

from __future__ import annotations

import base64
import html
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
       margin: 2rem auto;
       padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { margin-bottom: .2rem; } .subtitle { color: #555; margin-top: 0; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .88rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; vertical-align: top; overflow-wrap: anywhere; }
th { background: #f0f0f0; } td.r { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3rem; }
figure { margin: 1rem 0; } figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { font-size: .88rem; color: #444; }
.gallery { display: grid; gap: .6rem; } .gallery figure { margin: 0; }
.note { color: #555; font-size: .88rem; }
"""


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _table_html(t: Table) -> str:
    align = t.align or "l" + "r" * (len(t.header) - 1)
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{html.escape(t.caption)}</caption>")
    out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in t.header) + "</tr>")
    for row in t.rows:
        cells = "".join(
            f'<td class="{"r" if align[i : i + 1] == "r" else "l"}">{html.escape(str(c))}</td>'
            for i, c in enumerate(row)
        )
        out.append(f"<tr>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _block_html(b: Block) -> str:
    if isinstance(b, Heading):
        return f"<h{b.level}>{html.escape(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        return f'<p class="note">{html.escape(b.text)}</p>' if b.note else f"<p>{html.escape(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Table):
        return _table_html(b)
    if isinstance(b, Figure):
        return (
            f'<figure><img src="{data_uri(b.data, b.mime)}" style="width:{b.width * 100:.0f}%" '
            f'alt="{html.escape(b.caption)}"><figcaption>{html.escape(b.caption)}</figcaption></figure>'
        )
    if isinstance(b, Gallery):
        items = "".join(
            f'<figure><img src="{data_uri(png)}" alt="{html.escape(cap)}">'
            f"<figcaption>{html.escape(cap)}</figcaption></figure>"
            for png, cap in b.items
        )
        cap = f"<p><strong>{html.escape(b.caption)}</strong></p>" if b.caption else ""
        return (
            f'{cap}<div class="gallery" style="grid-template-columns: repeat({b.columns}, 1fr)">{items}</div>'
        )
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
