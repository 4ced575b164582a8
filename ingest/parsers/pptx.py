"""PPTX parser: one page per slide (page = slide number), its title as the section heading.

On each slide: the title, then every shape's text in the slide's order (text frames,
tables as " | " rows, groups read recursively), then the speaker notes, under the section
(title, "Speaker notes"). An untitled slide's section is ("Slide N",), a path that is not
in the text. Hidden slides are read too (they are part of the file). Charts, pictures and
SmartArt give no text.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from data.types import PageSpan, ParsedDocument, Section
from ingest.errors import CorruptError, EncryptedError, NoTextError, ParseError
from ingest.parsers import ooxml

NOTES_HEADING = "Speaker notes"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _frame_text(frame: Any) -> str:
    """A text frame's paragraphs, one per line (python-pptx gives line breaks as \\v)."""
    lines = (p.text.replace("\v", "\n").strip() for p in frame.paragraphs)
    return "\n".join(line for line in lines if line)


def _table_text(table: Any) -> str:
    """One line per non-empty row, cells joined by " | " (merged-over cells left out)."""
    rows = []
    for row in table.rows:
        cells = [" ".join(cell.text.split()) for cell in row.cells if not cell.is_spanned]
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _chart_text(chart: Any) -> str:
    """A chart's title, category labels and series names (its numbers are left out)."""
    lines = []
    if chart.has_title and chart.chart_title.has_text_frame:
        lines.append(_frame_text(chart.chart_title.text_frame))
    try:
        plot = chart.plots[0] if len(chart.plots) else None
        if plot is not None:
            lines.append(", ".join(str(c) for c in plot.categories if str(c).strip()))
            lines.append(", ".join(s.name for s in plot.series if s.name))
    except Exception:  # an odd chart part must not cost the slide its other text
        pass
    return "\n".join(line for line in lines if line)


def _shape_texts(shapes: Any, skip: Any = None) -> Iterator[str]:
    """Texts of `shapes` in order, descending into groups; `skip` is the title shape."""
    for shape in shapes:
        if skip is not None and shape.shape_id == skip.shape_id:
            continue
        if shape.shape_type is not None and int(shape.shape_type) == _GROUP:
            yield from _shape_texts(shape.shapes)
        elif getattr(shape, "has_chart", False):
            yield _chart_text(shape.chart)
        elif getattr(shape, "has_table", False):
            yield _table_text(shape.table)
        elif getattr(shape, "has_text_frame", False):
            yield _frame_text(shape.text_frame)


_GROUP = 6  # MSO_SHAPE_TYPE.GROUP, without importing python-pptx at module import


class _Builder:
    """Blocks joined by blank lines, with sections and one page span per slide."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.length = 0
        self.sections: list[Section] = []
        self.pages: list[PageSpan] = []

    def add(self, block: str) -> int:
        """Append a block and return its start offset."""
        start = self.length + (2 if self.blocks else 0)
        self.blocks.append(block)
        self.length = start + len(block)
        return start

    def slide(self, number: int, slide: Any) -> None:
        """Add one slide's title, shapes and notes as page `number`."""
        title_shape = slide.shapes.title
        title = _frame_text(title_shape.text_frame) if title_shape is not None else ""
        path = (" ".join(title.split()),) if title else (f"Slide {number}",)
        texts = [t for t in _shape_texts(slide.shapes, skip=title_shape) if t]
        notes = _notes(slide)
        if not (title or texts or notes):
            return
        start = self.length + (2 if self.blocks else 0)
        self.sections.append(Section(start, path))
        for text in ([title] if title else []) + texts:
            self.add(text)
        if notes:
            self.sections.append(Section(self.add(notes), (*path, NOTES_HEADING)))
        self.pages.append(PageSpan(number, start, self.length))


def _notes(slide: Any) -> str:
    """The slide's speaker notes ("" when it has none)."""
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    return _frame_text(frame) if frame is not None else ""


def _open(data: bytes) -> Any:
    """Open the presentation with python-pptx after the package checks."""
    if data.startswith(_OLE2):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise EncryptedError("The presentation is password-protected; that is not supported.")
        raise CorruptError("This is a legacy PowerPoint 97-2003 (.ppt) file, not a .pptx file.")
    if not data.startswith(b"PK"):
        raise CorruptError("Not a valid .pptx file (it is not a zip package).")
    archive = ooxml.check_package(data)
    if ooxml.is_strict(archive):
        data = ooxml.to_transitional(archive)
    import pptx  # imported here so importing the parser registry stays cheap

    return pptx.Presentation(io.BytesIO(data))


def parse(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Parse a .pptx file; `password` is ignored (encrypted files raise EncryptedError)."""
    out = _Builder()
    try:
        presentation = _open(data)
        count = 0
        for count, slide in enumerate(presentation.slides, start=1):
            out.slide(count, slide)
    except ParseError:
        raise
    except Exception as exc:
        raise CorruptError(f"Could not read the presentation: {type(exc).__name__}: {exc}") from exc
    text = "\n\n".join(out.blocks)
    if not text.strip():
        raise NoTextError("The presentation contains no text.")
    return ParsedDocument(text=text, sections=out.sections, pages=out.pages, page_count=count)
