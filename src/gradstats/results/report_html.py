"""HTML building blocks of the sweep report: one self-contained page, inline CSS, no script.

Every text that reaches the page goes through `esc` (``html.escape``); the functions here take
plain text and return HTML fragments (``str``). Figures are ``<img>`` tags with base64 PNG
data, so the file opens offline and can be mailed as it is.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d232a;
       margin: 0; background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; border-bottom: 1px solid #d0d7de;
     padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
p.sub { color: #57606a; margin: 0 0 1rem; }
nav { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem 1rem; }
nav a { margin-right: 1.2rem; color: #0969da; text-decoration: none; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.agree { color: #1a7f37; font-weight: 600; }
.disagree { color: #cf222e; font-weight: 600; }
.outside { color: #0550ae; }
.undetermined { color: #9a6700; }
.note { color: #57606a; font-size: 13px; }
.problem { color: #cf222e; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 13px; margin-top: .3rem; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: .8rem;
      overflow-x: auto; font-size: 13px; }
details { margin: .3rem 0; }
summary { cursor: pointer; }
ul.lines li { margin: .15rem 0; }
"""


def esc(text: object) -> str:
    """``text`` as HTML text (quotes escaped too, so it is safe inside attributes)."""
    return html.escape(str(text), quote=True)


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: ``sections`` are (id, heading, body HTML), linked from a nav bar."""
    nav = "".join(f'<a href="#{esc(sid)}">{esc(head)}</a>' for sid, head, _ in sections)
    body = "".join(f'<section id="{esc(sid)}"><h2>{esc(head)}</h2>{html_body}</section>'
                   for sid, head, html_body in sections)
    return ("<!DOCTYPE html>\n"
            f'<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main><h1>{esc(title)}</h1><p class=\"sub\">{esc(subtitle)}</p>"
            f"<nav>{nav}</nav>{body}</main></body></html>\n")


def table(header: Sequence[str], rows: Iterable[Sequence[object]],
          classes: Sequence[str] | None = None, row_classes: Iterable[str] | None = None,
          mark_column: int = 0) -> str:
    """A table of text cells; ``classes[j]`` styles column j (e.g. ``num``), ``row_classes``
    each row's cell in ``mark_column`` (a verdict's colour)."""
    classes = classes or [""] * len(header)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    marks = list(row_classes) if row_classes is not None else None
    lines = []
    for i, row in enumerate(rows):
        cells = []
        for j, cell in enumerate(row):
            cls = " ".join(c for c in (classes[j] if j < len(classes) else "",
                                       marks[i] if marks is not None and j == mark_column else "") if c)
            cells.append(f'<td class="{cls}">{esc(cell)}</td>' if cls else f"<td>{esc(cell)}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def key_values(rows: Iterable[tuple[str, object]]) -> str:
    """A two-column table of names and values (no header row)."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv"><tbody>{body}</tbody></table>'


def paragraph(text: str, cls: str = "") -> str:
    return f'<p class="{esc(cls)}">{esc(text)}</p>' if cls else f"<p>{esc(text)}</p>"


def bullet_list(items: Iterable[str], cls: str = "lines") -> str:
    """A list of text lines (empty string when there are none)."""
    items = list(items)
    if not items:
        return ""
    return f'<ul class="{esc(cls)}">' + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def preformatted(text: str) -> str:
    return f"<pre>{esc(text)}</pre>"


def details(summary_text: str, body: str) -> str:
    """A collapsed block (no script needed): ``body`` is HTML."""
    return f"<details><summary>{esc(summary_text)}</summary>{body}</details>"


def figure(kind: str, png: bytes, caption: str) -> str:
    """A PNG embedded as base64 with its caption."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="figure-{esc(kind)}"><img src="data:image/png;base64,{data}" '
            f'alt="{esc(kind)}: {esc(caption)}" data-kind="{esc(kind)}">'
            f"<figcaption><b>{esc(kind)}</b>: {esc(caption)}</figcaption></figure>")
