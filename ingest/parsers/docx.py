"""DOCX parser: body paragraphs and tables in order, heading sections, headers/footers last.

Text boxes, footnotes, comments and tracked deletions are not extracted. Distinct header and
footer lines of all sections go once at the end, after the body, under the section path
("Headers and footers",); that section starts at the first such line (the path is not itself
in the text), so body offsets are not shifted by page furniture.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

from data.types import ParsedDocument, Section
from ingest.errors import CorruptError, EncryptedError, NoTextError, ParseError

HEADER_FOOTER_PATH = ("Headers and footers",)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_P, _TBL, _R, _TR, _TC = (f"{_W}{t}" for t in ("p", "tbl", "r", "tr", "tc"))
_V_MERGE = f"{_W}tcPr/{_W}vMerge"
_SDT, _SDT_CONTENT, _CUSTOM_XML = f"{_W}sdt", f"{_W}sdtContent", f"{_W}customXml"
# Inline wrappers whose runs are part of the visible text (w:del / w:moveFrom are not).
_RUN_WRAPPERS = {f"{_W}{t}" for t in ("hyperlink", "ins", "smartTag", "fldSimple", "moveTo")}
_HEADING_NAME = re.compile(r"heading ([1-9])")
_OUTLINE_LEVELS = {str(n) for n in range(9)}
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HDR_FTR = tuple(
    f"{kind}{part}" for part in ("header", "footer") for kind in ("", "first_page_", "even_page_")
)


def _unwrap(el: Any) -> Any:
    """The element holding a content control's or custom-XML wrapper's children."""
    return el.find(_SDT_CONTENT) if el.tag == _SDT else el


def _block_elements(container: Any) -> Iterator[Any]:
    """Yield the w:p and w:tbl children of a body/cell/header in order, through wrappers."""
    for child in container.iterchildren():
        if child.tag in (_P, _TBL):
            yield child
        elif child.tag in (_SDT, _CUSTOM_XML) and (inner := _unwrap(child)) is not None:
            yield from _block_elements(inner)


def _run_text(container: Any) -> str:
    """Visible text of a paragraph's runs, including hyperlinks and tracked insertions."""
    parts: list[str] = []
    for child in container.iterchildren():
        if child.tag == _R:
            parts.append(child.text)
        elif child.tag in _RUN_WRAPPERS or child.tag in (_SDT, _CUSTOM_XML):
            inner = _unwrap(child)
            if inner is not None:
                parts.append(_run_text(inner))
    return "".join(parts)


def _cell_text(tc: Any) -> str:
    """One-line text of a cell; empty for the lower parts of a vertically merged cell."""
    merge = tc.find(_V_MERGE)
    if merge is not None and merge.get(f"{_W}val", "continue") == "continue":
        return ""  # Word shows only the first cell's content; leftovers here are hidden
    return " ".join(_block_lines(tc, flat=True))


def _table_rows(tbl: Any) -> list[str]:
    """One line per non-empty row, cells joined by " | " (nested tables flattened)."""
    rows = []
    for tr in tbl.iterchildren(_TR):
        cells = [_cell_text(tc) for tc in tr.iterchildren(_TC)]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _block_lines(container: Any, *, flat: bool = False) -> list[str]:
    """Non-empty texts of a container's paragraphs and tables (whitespace-collapsed if flat)."""
    lines = []
    for el in _block_elements(container):
        text = _run_text(el).strip() if el.tag == _P else "\n".join(_table_rows(el))
        if text:
            lines.append(" ".join(text.split()) if flat else text)
    return lines


def _heading_levels(document: Any) -> dict[str, int]:
    """Map paragraph style ids to heading levels: Title 0, Heading n (or outline level) n."""
    levels: dict[str, int] = {}
    for style in document.styles.element.iterchildren(f"{_W}style"):
        if style.get(f"{_W}type") != "paragraph":
            continue
        name_el, style_id = style.find(f"{_W}name"), style.get(f"{_W}styleId")
        if style_id is None:
            continue
        name = (name_el.get(f"{_W}val") or "").strip().lower() if name_el is not None else ""
        outline = style.find(f"{_W}pPr/{_W}outlineLvl")
        outline_val = outline.get(f"{_W}val", "") if outline is not None else ""
        if name == "title":
            levels[style_id] = 0
        elif match := _HEADING_NAME.fullmatch(name):
            levels[style_id] = int(match.group(1))
        elif outline_val in _OUTLINE_LEVELS:  # 9 means "body text"
            levels[style_id] = int(outline_val) + 1
    return levels


def _style_id(p: Any) -> str | None:
    """The paragraph's style id, if any."""
    style = p.find(f"{_W}pPr/{_W}pStyle")
    return style.get(f"{_W}val") if style is not None else None


class _Builder:
    """Accumulates blocks joined by blank lines (table rows by single newlines) and sections."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.length = 0
        self.sections: list[Section] = []
        self.outline: list[tuple[int, str]] = []

    def add(self, block: str) -> int:
        """Append a block and return its start offset."""
        start = self.length + (2 if self.blocks else 0)
        self.blocks.append(block)
        self.length = start + len(block)
        return start

    def heading(self, level: int, title: str) -> None:
        """Add a heading paragraph and open a section nested under shallower headings."""
        while self.outline and self.outline[-1][0] >= level:
            self.outline.pop()
        self.outline.append((level, " ".join(title.split())))
        self.sections.append(Section(self.add(title), tuple(t for _, t in self.outline)))


def _add_body(document: Any, out: _Builder) -> None:
    """Add body paragraphs (headings opening sections) and tables in document order."""
    levels = _heading_levels(document)
    for el in _block_elements(document.element.body):
        if el.tag == _TBL:
            if rows := _table_rows(el):
                out.add("\n".join(rows))
            continue
        text = _run_text(el).strip()
        level = levels.get(_style_id(el) or "")
        if text and level is not None:
            out.heading(level, text)
        elif text:
            out.add(text)


def _add_headers_footers(document: Any, out: _Builder) -> None:
    """Add each distinct header/footer line of all sections once, in a trailing section."""
    seen: dict[str, None] = {}
    for section in document.sections:
        for attr in _HDR_FTR:
            hdr_ftr = getattr(section, attr)
            # A linked header has no part of its own; touching `.part` would create one.
            if not hdr_ftr.is_linked_to_previous:
                seen.update(dict.fromkeys(_block_lines(hdr_ftr.part.element)))
    for index, line in enumerate(seen):
        start = out.add(line)
        if index == 0:
            out.sections.append(Section(start, HEADER_FOOTER_PATH))


def _open(data: bytes) -> Any:
    """Open the package with python-docx, turning its failures into parse errors."""
    if data.startswith(_OLE2):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise EncryptedError("The Word document is password-protected; that is not supported.")
        raise CorruptError("This is a legacy Word 97-2003 (.doc) file, not a .docx file.")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CorruptError("Not a valid .docx file (it is not a zip package).")
    import docx  # imported here so importing the parser registry stays cheap

    return docx.Document(io.BytesIO(data))


def parse(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Parse a .docx file; `password` is ignored (encrypted files raise EncryptedError)."""
    try:
        document = _open(data)
        out = _Builder()
        _add_body(document, out)
        _add_headers_footers(document, out)
    except ParseError:
        raise
    except Exception as exc:
        raise CorruptError(f"Could not read the Word document: {exc}") from exc
    text = "\n\n".join(out.blocks)
    if not text.strip():
        raise NoTextError("The Word document contains no text.")
    return ParsedDocument(text=text, sections=out.sections, pages=[], page_count=None)
