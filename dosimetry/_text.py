"""Escaping of untrusted text for each output format.

ROI names, patient names, series and study descriptions come from DICOM files that the
workbench did not write; they may hold markup, line breaks, spreadsheet formulas or
terminal control sequences. Every such string passes through the function of the format
it is written into:

=================  ====================================================================
``escape_markdown``  Markdown (report.md): one trimmed line, ``& < >`` as entities, the
                   characters that start inline markup backslash-escaped (CommonMark 0.31,
                   section 2.4: any ASCII punctuation may be escaped), and the characters
                   that would open a block at the start of the line (list, quote,
                   heading, thematic break, ordered list) escaped there.
``escape_html``    HTML text and attribute values: ``& < > " '`` as entities.
``csv_cell``       one CSV cell: one line; a cell that a spreadsheet would run as a
                   formula (first character ``= + - @``, tab or carriage return, also
                   their full-width forms) gets a leading apostrophe (OWASP, "CSV
                   Injection"). Quoting of commas and quotes is left to :mod:`csv`.
``terminal``       text for a terminal: ANSI/VT escape sequences (CSI, OSC, ...) removed,
                   line breaks and tabs as spaces, other control characters removed.
=================  ====================================================================

All four first remove the invisible Unicode bidirectional controls (U+202A-U+202E,
U+2066-U+2069, U+200E, U+200F, U+061C), which can make displayed text read differently
from what it is (Boucher & Anderson, "Trojan Source", USENIX Security 2023), and the C0/C1
control characters other than line breaks and tabs (which each format handles itself).

None of these functions validates content; they only make it inert. Numbers must be
written as numbers, not passed through :func:`csv_cell` (``-5`` would get an apostrophe).
"""

from __future__ import annotations

import html
import re

__all__ = ["escape_markdown", "escape_html", "csv_cell", "terminal"]

#: Unicode bidirectional formatting characters (Unicode Standard Annex #9, table 1).
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: Line breaks: LF, VT, FF, CR, NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR.
_LINE_BREAKS = "\n\x0b\x0c\r\x85\u2028\u2029"
#: C0 and C1 controls (and DEL) except tab and the line breaks above.
_CONTROLS = "".join(
    chr(c)
    for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
    if chr(c) not in _LINE_BREAKS and chr(c) != "\t"
)
_DROP = str.maketrans("", "", _BIDI + _CONTROLS)
_ONE_LINE = re.compile(f"[{re.escape(_LINE_BREAKS)}\t]+")
_HTML_BREAKS = str.maketrans({c: "\n" for c in "\x0b\x0c\x85\u2028\u2029"})

#: ANSI / ECMA-48 escape sequences: CSI (ESC [ or the 8-bit 0x9B) with parameters,
#: OSC/DCS/SOS/PM/APC strings up to BEL or ST, and two-character ESC sequences.
_ANSI = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]                       # CSI ... final byte
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)  # OSC, DCS, ... strings
    | \x1b[ -/]*[0-~]                                       # other ESC sequences
    """,
    re.VERBOSE | re.DOTALL,
)

#: Characters a spreadsheet reads as the start of a formula (ASCII and full-width forms).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: Escaped everywhere: emphasis, code, links/images, tables, headings, strikethrough.
_MD_INLINE = set("\\`*_[]|!~#")
#: Escaped when they start the line: list items, thematic breaks, setext underlines.
_MD_LINE_START = set("-+=")
_MD_ORDERED = re.compile(r"^(\d{1,9})([.)])")


def _clean(text: object) -> str:
    return str(text).translate(_DROP)


def escape_markdown(text: object) -> str:
    """``text`` as inert Markdown on one line (for a paragraph or a table cell).

    Line breaks become spaces and the line is trimmed (no injected headings, list items,
    table rows or indented code), ``& < >`` become entities (no raw HTML or autolinks),
    ``\\ ` * _ [ ] | ! ~ #`` are backslash-escaped everywhere (no emphasis, code spans,
    links, images, table pipes, strikethrough or headings), and a leading ``- + =`` or
    ``1.``/``1)`` is escaped (no list or thematic break). Ordinary text such as
    ``"Lu-177: 3.2 Gy (95 %)"`` stays readable. A bare URL may still be shown as a link
    by renderers with the GFM autolink extension.

    >>> escape_markdown("Liver\\n# Injected | x")
    'Liver \\\\# Injected \\\\| x'
    >>> escape_markdown("<b>kidney</b>")
    '&lt;b&gt;kidney&lt;/b&gt;'
    >>> escape_markdown("- 1. item"), escape_markdown("2) x")
    ('\\\\- 1. item', '2\\\\) x')
    """
    s = _ONE_LINE.sub(" ", _clean(text)).strip()
    out = []
    for ch in s:
        if ch in _MD_ENTITIES:
            out.append(_MD_ENTITIES[ch])
        elif ch in _MD_INLINE:
            out.append("\\" + ch)
        else:
            out.append(ch)
    md = "".join(out)
    if md[:1] in _MD_LINE_START:
        md = "\\" + md
    m = _MD_ORDERED.match(md)
    if m:
        md = m.group(1) + "\\" + md[m.end(1) :]
    return md


def escape_html(text: object) -> str:
    """``text`` as HTML text or a quoted attribute value (``& < > " '`` as entities).

    Tabs, LF and CR are kept (whitespace in HTML); the other line breaks (VT, FF, NEL,
    U+2028, U+2029) become LF; other control characters and bidi controls are removed.

    >>> escape_html('<script>alert("x")</script>')
    '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'
    """
    return html.escape(_clean(text).translate(_HTML_BREAKS), quote=True)


def csv_cell(text: object) -> str:
    """``text`` as one CSV cell that a spreadsheet shows as text, never runs as a formula.

    Line breaks and tabs become spaces; a cell starting (after leading spaces) with
    ``= + - @``, tab, carriage return or their full-width forms gets a leading ``'``.
    Write the result with :mod:`csv` (which quotes commas and quotes).

    >>> csv_cell('=HYPERLINK("http://x","click")')
    '\\'=HYPERLINK("http://x","click")'
    >>> csv_cell("liver\\nkidney")
    'liver kidney'
    """
    raw = _clean(text)
    if raw.startswith(_FORMULA_START):  # the original first character (tab, CR included)
        return "'" + _ONE_LINE.sub(" ", raw)
    s = _ONE_LINE.sub(" ", raw)
    if s.lstrip(" ").startswith(_FORMULA_START):
        return "'" + s
    return s


def terminal(text: object) -> str:
    """``text`` safe to print on a terminal: escape sequences and controls removed.

    ANSI/VT escape sequences (colours, cursor movement, OSC 8 hyperlinks, window titles)
    are removed whole; line breaks and tabs become spaces (a name cannot forge an extra
    output line); other control and bidi characters are removed.

    >>> terminal("\\x1b[31mRED\\x1b[0m\\nfake line")
    'RED fake line'
    """
    s = _ANSI.sub("", str(text))
    s = _ONE_LINE.sub(" ", s)
    return s.translate(_DROP)
