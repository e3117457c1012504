"""The report as one self-contained HTML page: inline CSS and SVG, no script, no fetches."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

__all__ = ["bullets", "escape", "figure", "key_values", "page", "para", "section", "table"]

from cellauto._version import __version__

CSS = """
@page { size: auto; margin: 14mm 12mm; }
* { box-sizing: border-box; }
body { font: 10pt/1.35 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #111; margin: 0 auto; max-width: 190mm; padding: 8mm 4mm; }
h1 { font-size: 16pt; margin: 4pt 0 6pt; }
h2 { font-size: 12.5pt; margin: 14pt 0 4pt; border-bottom: 1.5pt solid #1f4e79;
     break-after: avoid; page-break-after: avoid; }
h3 { font-size: 10.5pt; margin: 9pt 0 3pt; break-after: avoid; page-break-after: avoid; }
table { border-collapse: collapse; width: 100%; font-size: 8pt; margin: 2pt 0 6pt; }
th, td { border: 0.5pt solid #bbb; padding: 1.5pt 3pt; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #eef2f6; }
thead { display: table-header-group; }
tr, figure { break-inside: avoid; page-break-inside: avoid; }
table.kv th { width: 28%; }
table.timeline td:nth-child(-n+2), table.timeline td:nth-child(4),
table.signatures td:nth-child(-n+3) { white-space: nowrap; }
figure { margin: 3pt 0 8pt; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 7.5pt; color: #444; }
.status { font-weight: 700; padding: 4pt 6pt; margin: 0 0 4pt; border: 1pt solid; }
.ok { color: #14532d; background: #e8f5e9; border-color: #14532d; }
.bad { color: #7f1d1d; background: #fdecea; border-color: #7f1d1d; }
.muted { color: #555; font-size: 8pt; }
.cat { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
@media print { body { max-width: none; padding: 0; } a { color: inherit; } }
"""


def table(
    headings: Sequence[str], rows: Iterable[Sequence[str]], *, cls: str = "", numeric: int = -1
) -> str:
    """An HTML table; columns from `numeric` on are right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{escape(c)}</td>' if 0 <= numeric <= i else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def key_values(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of labels and values."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def page(title: str, status: str, ok: bool, sections: Iterable[str]) -> str:
    """The whole document; `status` is its first line."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="generator" content="cellauto {escape(__version__)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<p id="status" class="status {"ok" if ok else "bad"}">{escape(status)}</p>'
        + "".join(sections)
        + "</body></html>\n"
    )


def section(anchor: str, heading: str, *parts: str) -> str:
    """One titled section of the report."""
    return f'<section id="{anchor}"><h2>{escape(heading)}</h2>{"".join(parts)}</section>'


def para(text: str, cls: str = "") -> str:
    """A paragraph of plain text."""
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{escape(text)}</p>"


def bullets(items: Iterable[str]) -> str:
    """A bulleted list of plain text."""
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def figure(svg: str, caption: str) -> str:
    """An inline SVG with its caption."""
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"
