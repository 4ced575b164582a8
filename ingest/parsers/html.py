"""HTML parser: the main content as readable block text, h1-h6 sections, tables as " | " rows."""

from __future__ import annotations

import codecs
import re
import warnings
from typing import Any

from data.types import ParsedDocument, Section
from ingest.errors import CorruptError, NoTextError, ParseError
from ingest.parsers.html_main import strip_boilerplate
from ingest.parsers.text import bom_encoding, decode_text, normalize_text

_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9._:-]+)", re.IGNORECASE)
# WHATWG: these labels mean windows-1252 in HTML.
_AS_CP1252 = {"ascii", "latin-1", "iso8859-1", "cp1252"}
_DROP = ["script", "style", "noscript", "template", "head", "svg", "iframe"]
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = {
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
    "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
    "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav", "ol", "p",
    "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip
_BREAK = "\x00"  # stands for <br> until whitespace is collapsed; NULs never survive decoding
_WS = re.compile(r"\s+")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_END = object()  # marks the end of a block element on the walk stack


def decode_html(data: bytes) -> str:
    """Decode HTML bytes: BOM first, then a `<meta charset>` that fits, else `decode_text`."""
    if bom_encoding(data) is None:
        match = _META_CHARSET.search(data[:4096])
        if match:
            try:
                name = codecs.lookup(match.group(1).decode("ascii")).name
                if name in _AS_CP1252:
                    name = "cp1252"
                if not name.startswith("utf-16") and not name.startswith("utf-32"):
                    return normalize_text(data.decode(name))
            except (LookupError, UnicodeDecodeError):
                pass  # a wrong declaration: fall back to detection
    return decode_text(data)


def _collapse(text: str) -> str:
    """Collapse whitespace runs to single spaces, keeping <br> breaks as newlines."""
    lines = (_WS.sub(" ", line).strip() for line in text.split(_BREAK))
    return "\n".join(line for line in lines if line)


def _flat(tag: Any) -> str:
    """One-line text of an element, with spaces where blocks or line breaks were."""
    from bs4 import NavigableString, Tag
    from bs4.element import PreformattedString

    parts: list[str] = []
    for node in tag.descendants:
        if isinstance(node, Tag) and (node.name in _BLOCKS or node.name == "br"):
            parts.append(" ")
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            parts.append(str(node))
    return _WS.sub(" ", "".join(parts)).strip()


class _Builder:
    """Accumulates blocks joined by blank lines and records heading sections."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.length = 0
        self.inline: list[str] = []
        self.sections: list[Section] = []
        self.outline: list[tuple[int, str]] = []

    def add_block(self, block: str) -> int:
        """Append a finished block and return its start offset."""
        start = self.length + (2 if self.blocks else 0)
        self.blocks.append(block)
        self.length = start + len(block)
        return start

    def flush(self) -> None:
        """End the running paragraph of inline text."""
        text = _collapse("".join(self.inline))
        self.inline.clear()
        if text:
            self.add_block(text)

    def heading(self, level: int, title: str) -> None:
        """Add a heading block and open a section nested under shallower headings."""
        self.flush()
        if not title:
            return
        while self.outline and self.outline[-1][0] >= level:
            self.outline.pop()
        self.outline.append((level, title))
        start = self.add_block(title)
        self.sections.append(Section(start, tuple(t for _, t in self.outline)))


def _table_rows(table: Any) -> list[str]:
    """Rows of a data table (one without nested tables), cells joined by " | "."""
    rows = []
    for tr in table.find_all("tr"):
        cells = [_flat(cell) for cell in tr.find_all(["td", "th"], recursive=False)]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _add_table(table: Any, out: _Builder) -> None:
    """Add a data table: its caption, then one line per row."""
    out.flush()
    caption = table.find("caption")
    if caption is not None and (caption_text := _flat(caption)):
        out.add_block(caption_text)
    if rows := _table_rows(table):
        out.add_block("\n".join(rows))


def _is_layout_table(table: Any) -> bool:
    """A table holding headings or other tables lays out a page; walk it as blocks."""
    return table.find(["table", *_HEADINGS]) is not None


def _walk(root: Any, out: _Builder) -> None:
    """Walk the tree without recursion (deeply nested pages exist), filling `out`."""
    from bs4 import NavigableString
    from bs4.element import PreformattedString

    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if node is _END:
            out.flush()
        elif isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):
                out.inline.append(str(node))
        elif node.name in _HEADINGS:
            out.heading(int(node.name[1]), _flat(node))
        elif node.name == "br":
            out.inline.append(_BREAK)
        elif node.name == "pre":
            out.flush()
            if code := node.get_text().strip("\n").rstrip():
                out.add_block(code)
        elif node.name == "table" and not _is_layout_table(node):
            _add_table(node, out)
        else:
            if node.name in _BLOCKS:
                out.flush()
                stack.append(_END)
            stack.extend(reversed(node.contents))
    out.flush()


def _is_hidden(tag: Any) -> bool:
    """True for elements a browser would not render (`hidden`, inline display:none)."""
    style = tag.get("style")
    return tag.has_attr("hidden") or (
        isinstance(style, str) and _HIDDEN_STYLE.search(style) is not None
    )


def extract(text: str, *, main_only: bool = True) -> ParsedDocument:
    """Turn decoded HTML into text and sections; `main_only` strips navigation and boilerplate."""
    from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        # XHTML (e.g. inline-XBRL filings) is read as HTML on purpose: it is HTML to browsers.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(text, "lxml")
    title = _flat(soup.title) if soup.title and soup.title.find_parent("svg") is None else ""
    for tag in [*soup.find_all(_DROP), *soup.find_all(_is_hidden)]:
        if not tag.decomposed:
            tag.decompose()
    if main_only:
        strip_boilerplate(soup)
    out = _Builder()
    if title:
        out.add_block(title)
    _walk(soup, out)
    return ParsedDocument(text="\n\n".join(out.blocks), sections=out.sections)


def parse(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Parse an HTML file; `password` is ignored."""
    try:
        doc = extract(decode_html(data))
    except ParseError:
        raise
    except Exception as exc:
        raise CorruptError(f"Could not read the HTML file: {exc}") from exc
    if not doc.text.strip():
        raise NoTextError("The HTML page contains no visible text.")
    return doc
