"""Self-contained HTML rendering of a report (figures embedded, no network, print CSS).

The page needs nothing but itself: figures are PNG data URIs, the style sheet is inline,
there is no script. Every piece of text is HTML-escaped. Printing from a browser gives one
section per page (``break-before: page``) with the tables kept readable.
"""

from __future__ import annotations

import base64

from .blocks import Document, Figure, KeyValues, Paragraph, Table

__all__ = ["render_html"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
       max-width: 72em; color: #1a1a1a; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #c0392b; padding-bottom: 0.15em; margin-top: 1.6em; }
p.subtitle { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.86em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; vertical-align: top; }
th { background: #f3f3f3; text-align: left; }
td.r { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; font-size: 0.85em; color: #555; text-align: left; padding-top: 0.3em; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.15em 1em; margin: 0.6em 0; }
dt { font-weight: 600; } dd { margin: 0; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #444; }
.note { background: #eef5fb; border-left: 4px solid #2e86c1; padding: 0.4em 0.8em; }
.warning { background: #fdf2e9; border-left: 4px solid #ca6f1e; padding: 0.4em 0.8em; }
ol.refs { font-size: 0.85em; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  section { break-before: page; } section:first-of-type { break-before: auto; }
  table, figure, dl { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"""


def _h(text: object) -> str:
    from .._text import escape_html

    return escape_html(str(text))


def _block(block: object) -> str:
    if isinstance(block, Paragraph):
        cls = f' class="{block.kind}"' if block.kind != "plain" else ""
        return f"<p{cls}>{_h(block.text)}</p>"
    if isinstance(block, KeyValues):
        items = "".join(f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>" for k, v in block.items)
        return f"<dl>{items}</dl>"
    if isinstance(block, Table):
        align = block.align or tuple("left" for _ in block.header)
        head = "".join(f"<th>{_h(h)}</th>" for h in block.header)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td class="r">{_h(c)}</td>' if a == "right" else f"<td>{_h(c)}</td>"
                for c, a in zip(row, align, strict=False)
            )
            + "</tr>"
            for row in block.rows
        )
        cap = f"<caption>{_h(block.caption)}</caption>" if block.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        return (
            f'<figure><img alt="{_h(block.caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_h(block.caption)}</figcaption></figure>"
        )
    raise TypeError(f"unknown report block {type(block).__name__}")


def render_html(doc: Document) -> str:
    """The document as one self-contained HTML page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(doc.title)}</title><style>{_CSS}</style></head><body>",
        f'<header><h1>{_h(doc.title)}</h1><p class="subtitle">{_h(doc.subtitle)}</p></header>',
    ]
    for section in doc.sections:
        parts.append(f"<section><h2>{_h(section.title)}</h2>")
        parts += [_block(b) for b in section.blocks]
        parts.append("</section>")
    if doc.citations:
        refs = "".join(f"<li>{_h(c)}</li>" for c in doc.citations)
        parts.append(f'<section><h2>References</h2><ol class="refs">{refs}</ol></section>')
    parts.append("</body></html>")
    return "\n".join(parts)
