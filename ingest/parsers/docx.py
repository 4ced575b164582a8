"""DOCX parser: the body in order, then notes, comments (optional), headers and footers.

Paragraphs, tables, text boxes and shapes (after the paragraph they are anchored in; of
a shape stored as DrawingML and as VML only one copy) and equations (OMML as linear text)
in document order; headings open sections. Then, each under its own section path (the
path itself is not in the text, so body offsets are not shifted): footnotes, endnotes,
comments when asked for (`parse_with_comments`), and the distinct header and footer lines
of all sections once. Tracked deletions are not text. Strict Open XML packages are read
like transitional ones; zip limits are checked before the package is opened.
"""

from __future__ import annotations

import io
import re
from typing import Any

from data.types import ParsedDocument, Section
from ingest.errors import CorruptError, EncryptedError, NoTextError, ParseError
from ingest.parsers import ooxml
from ingest.parsers.docx_blocks import (
    TBL,
    W,
    block_elements,
    block_lines,
    box_lines,
    run_text,
    table_rows,
)

HEADER_FOOTER_PATH = ("Headers and footers",)
FOOTNOTES_PATH, ENDNOTES_PATH, COMMENTS_PATH = ("Footnotes",), ("Endnotes",), ("Comments",)
_RT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
# relationship type, element of one note, section path
_NOTES = (
    (f"{_RT}footnotes", f"{W}footnote", FOOTNOTES_PATH),
    (f"{_RT}endnotes", f"{W}endnote", ENDNOTES_PATH),
)
_HEADING_NAME = re.compile(r"heading ([1-9])")
_OUTLINE_LEVELS = {str(n) for n in range(9)}
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HDR_FTR = tuple(
    f"{kind}{part}" for part in ("header", "footer") for kind in ("", "first_page_", "even_page_")
)


def _heading_levels(document: Any) -> dict[str, int]:
    """Map paragraph style ids to heading levels: Title 0, Heading n (or outline level) n."""
    levels: dict[str, int] = {}
    for style in document.styles.element.iterchildren(f"{W}style"):
        if style.get(f"{W}type") != "paragraph":
            continue
        name_el, style_id = style.find(f"{W}name"), style.get(f"{W}styleId")
        if style_id is None:
            continue
        name = (name_el.get(f"{W}val") or "").strip().lower() if name_el is not None else ""
        outline = style.find(f"{W}pPr/{W}outlineLvl")
        outline_val = outline.get(f"{W}val", "") if outline is not None else ""
        if name == "title":
            levels[style_id] = 0
        elif match := _HEADING_NAME.fullmatch(name):
            levels[style_id] = int(match.group(1))
        elif outline_val in _OUTLINE_LEVELS:  # 9 means "body text"
            levels[style_id] = int(outline_val) + 1
    return levels


def _style_id(p: Any) -> str | None:
    """The paragraph's style id, if any."""
    style = p.find(f"{W}pPr/{W}pStyle")
    return style.get(f"{W}val") if style is not None else None


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
    """Add body paragraphs (headings opening sections), text boxes and tables in order."""
    levels = _heading_levels(document)
    for el in block_elements(document.element.body):
        if el.tag == TBL:
            if rows := table_rows(el):
                out.add("\n".join(rows))
            continue
        text = run_text(el).strip()
        level = levels.get(_style_id(el) or "")
        if text and level is not None:
            out.heading(level, text)
        elif text:
            out.add(text)
        for line in box_lines(el):
            out.add(line)


def _add_lines(out: _Builder, lines: Any, path: tuple[str, ...]) -> None:
    """Add blocks in a trailing section `path` that starts at the first of them."""
    for index, line in enumerate(lines):
        start = out.add(line)
        if index == 0:
            out.sections.append(Section(start, path))


def _part_element(part: Any) -> Any:
    """The root element of a package part python-docx loaded (parsed here if it did not)."""
    element = getattr(part, "element", None)
    return element if element is not None else ooxml.parse_xml(part.blob)


def _story_parts(document: Any, reltype: str) -> list[Any]:
    """Root elements of the document's parts related by `reltype` (footnotes, comments)."""
    rels = document.part.rels.values()
    return [
        _part_element(r.target_part) for r in rels if r.reltype == reltype and not r.is_external
    ]


def _add_notes(document: Any, out: _Builder) -> None:
    """Add footnotes, then endnotes, one block each (separators are not notes)."""
    for reltype, tag, path in _NOTES:
        notes = []
        for root in _story_parts(document, reltype):
            for note in root.iterchildren(tag):
                if note.get(f"{W}type", "normal") == "normal":
                    notes.append("\n".join(block_lines(note)))
        _add_lines(out, [n for n in notes if n], path)


def _add_comments(document: Any, out: _Builder) -> None:
    """Add each comment as "Author: text" (anchored nowhere: review remarks, not body)."""
    comments = []
    for root in _story_parts(document, f"{_RT}comments"):
        for comment in root.iterchildren(f"{W}comment"):
            text = "\n".join(block_lines(comment))
            author = (comment.get(f"{W}author") or "").strip()
            if text:
                comments.append(f"{author}: {text}" if author else text)
    _add_lines(out, comments, COMMENTS_PATH)


def _add_headers_footers(document: Any, out: _Builder) -> None:
    """Add each distinct header/footer line of all sections once, in a trailing section."""
    seen: dict[str, None] = {}
    for section in document.sections:
        for attr in _HDR_FTR:
            hdr_ftr = getattr(section, attr)
            # A linked header has no part of its own; touching `.part` would create one.
            if not hdr_ftr.is_linked_to_previous:
                seen.update(dict.fromkeys(block_lines(hdr_ftr.part.element)))
    _add_lines(out, seen, HEADER_FOOTER_PATH)


def _open(data: bytes) -> Any:
    """Open the package with python-docx, turning its failures into parse errors."""
    if data.startswith(_OLE2):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise EncryptedError("The Word document is password-protected; that is not supported.")
        raise CorruptError("This is a legacy Word 97-2003 (.doc) file, not a .docx file.")
    if not data.startswith(b"PK"):
        raise CorruptError("Not a valid .docx file (it is not a zip package).")
    archive = ooxml.check_package(data)
    if ooxml.is_strict(archive):
        data = ooxml.to_transitional(archive)
    import docx  # imported here so importing the parser registry stays cheap

    return docx.Document(io.BytesIO(data))


def parse(data: bytes, *, password: str | None = None, comments: bool = False) -> ParsedDocument:
    """Parse a .docx file; `password` is ignored (encrypted files raise EncryptedError)."""
    try:
        document = _open(data)
        out = _Builder()
        _add_body(document, out)
        _add_notes(document, out)
        if comments:
            _add_comments(document, out)
        _add_headers_footers(document, out)
    except ParseError:
        raise
    except Exception as exc:
        raise CorruptError(f"Could not read the Word document: {exc}") from exc
    text = "\n\n".join(out.blocks)
    if not text.strip():
        raise NoTextError("The Word document contains no text.")
    return ParsedDocument(text=text, sections=out.sections, pages=[], page_count=None)


def parse_with_comments(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """`parse` with review comments added at the end (GROUNDED_INGEST__DOCX_COMMENTS)."""
    return parse(data, password=password, comments=True)
