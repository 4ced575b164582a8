"""XLSX/XLSM parser: one section per worksheet (its name first), rows as Markdown rows.

Sheets are streamed row by row (openpyxl's read-only mode), so a huge sheet never sits in
memory as cells; only its text is built. Formulas give their cached values (what Excel
last showed; a file never calculated has none). Empty rows are skipped; an empty row ends
a table (unless the next row is as wide as its header), and the next row is the header of a
new one. Rows are grouped
into blocks of about BLOCK_CHARS, each starting with its table's header row, so that a
chunk cut at a block boundary still says what its columns are. A value merged over
rows is repeated in each row (a category belongs to every row it spans); one merged across
columns is said once. A row with a single value above a table is its title, not its header;
columns left empty of the header are dropped.
Chart sheets hold no cell text and are skipped; hidden sheets are read.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

from data.types import ParsedDocument, Section
from ingest.errors import CorruptError, EncryptedError, NoTextError, ParseError
from ingest.parsers import ooxml

BLOCK_CHARS = 1000
_MAX_FILLED_CELLS = 10_000  # larger merged ranges keep their value in the first cell only
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]{1,3})(\d+):([A-Z]{1,3})(\d+)"')
_READ_STEP = 1 << 20


def _column(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def _merged_ranges(stream: Any) -> Iterator[tuple[int, int, int, int]]:
    """(min_row, min_col, max_row, max_col) of each mergeCell, read from the raw sheet XML.

    openpyxl's read-only mode does not report merged cells; the list sits after the rows,
    so it is found by a scan of the bytes (in steps, overlapping by one tag's length).
    """
    tail = b""
    while chunk := stream.read(_READ_STEP):
        buf = tail + chunk
        last = 0
        for m in _MERGE.finditer(buf):
            c1, r1, c2, r2 = _column(m[1]), int(m[2]), _column(m[3]), int(m[4])
            yield min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)
            last = m.end()
        tail = buf[max(last, len(buf) - 64) :]


def _fill_map(ws: Any) -> dict[int, dict[int, tuple[int, int]]]:
    """Row → column → anchor cell, for the cells below the anchor of merged ranges.

    Only down the first column: a category merged over rows belongs to each of them,
    while a title merged across columns is said once.
    """
    archive, path = getattr(ws.parent, "_archive", None), getattr(ws, "_worksheet_path", None)
    if archive is None or path is None:
        return {}
    fill: dict[int, dict[int, tuple[int, int]]] = {}
    with archive.open(path) as stream:
        for r1, c1, r2, c2 in _merged_ranges(stream):
            if (r2 - r1 + 1) * (c2 - c1 + 1) > _MAX_FILLED_CELLS:
                continue
            for r in range(r1, r2 + 1):
                row = fill.setdefault(r, {})
                if r != r1:
                    row[c1] = (r1, c1)
    return fill


def _format(value: Any) -> str:
    """A cell value as table text: integral floats without ".0", dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date().isoformat()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    text = " ".join(str(value).split())
    return text.replace("|", "\\|")


def _rows(ws: Any) -> Iterator[list[str] | None]:
    """Each row's cell texts (trailing empties dropped; merged values filled); None if empty."""
    fill = _fill_map(ws)
    wanted = {anchor for row in fill.values() for anchor in row.values()}
    anchors: dict[tuple[int, int], str] = {}
    ws.reset_dimensions()  # a declared A1:XFD1048576 must not pad every row to 16,384 cells
    for r, row in enumerate(ws.iter_rows(values_only=True), start=1):
        cells = [_format(v) for v in row]
        if wanted:
            for c, text in enumerate(cells, start=1):
                if (r, c) in wanted:
                    anchors[(r, c)] = text
        if merged := fill.get(r):
            cells += [""] * (max(merged) - len(cells))
            for c, anchor in merged.items():
                if not cells[c - 1]:
                    cells[c - 1] = anchors.get(anchor, "")
        while cells and not cells[-1]:
            cells.pop()
        yield cells or None


def _markdown(cells: list[str], width: int) -> str:
    return "| " + " | ".join(cells + [""] * (width - len(cells))) + " |"


class _Table:
    """Rows between gaps: title lines, then a header and its rows, cut into blocks."""

    def __init__(self) -> None:
        self.lines: list[str] = []  # the current block
        self.header: str | None = None
        self.width = self.indent = self.size = 0

    def add(self, cells: list[str]) -> str | None:
        """Add a row; returns a finished block when this row starts the next one."""
        if self.header is None:
            filled = [c for c in cells if c]
            if len(filled) == 1:  # a title above a table, or a one-column list
                done = None
                if self.size > BLOCK_CHARS:
                    done, self.lines, self.size = "\n".join(self.lines), [], 0
                self.lines.append(filled[0])
                self.size += len(filled[0]) + 1
                return done
            self.indent = len(cells) - len(cells_lstrip := _lstrip(cells))
            self.width = len(cells_lstrip)
            rule = _markdown(["---"] * self.width, self.width)
            self.header = _markdown(cells_lstrip, self.width) + "\n" + rule
            self.lines.append(self.header)
            self.size += len(self.header) + 1
            return None
        if not any(cells[: self.indent]):  # the columns left of the header are empty
            cells = cells[self.indent :]
        line = _markdown(cells, max(self.width, len(cells)))
        done = None
        if self.size + len(line) > BLOCK_CHARS and self.lines[-1] != self.header:
            done = "\n".join(self.lines)
            self.lines, self.size = [self.header], len(self.header) + 1
        self.lines.append(line)
        self.size += len(line) + 1
        return done

    def close(self) -> str | None:
        """The last block, if any."""
        return "\n".join(self.lines) if self.lines else None


def _lstrip(cells: list[str]) -> list[str]:
    start = 0
    while start < len(cells) and not cells[start]:
        start += 1
    return cells[start:]


def _sheet_blocks(rows: Iterable[list[str] | None]) -> Iterator[str]:
    """Blocks of Markdown table rows, each led by its table's header (and rule)."""
    table, gap = _Table(), False
    for cells in rows:
        if cells is None:
            gap = True
            continue
        # A gap ends the table unless the rows after it are as wide as its header.
        if gap and (table.header is None or len(cells) - table.indent != table.width):
            if (block := table.close()) is not None:
                yield block
            table = _Table()
        gap = False
        if (block := table.add(cells)) is not None:
            yield block
    if (block := table.close()) is not None:
        yield block


def _open(data: bytes) -> Any:
    """Open the workbook read-only with cached formula values."""
    if data.startswith(_OLE2):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise EncryptedError("The workbook is password-protected; that is not supported.")
        raise CorruptError("This is a legacy Excel 97-2003 (.xls) file, not an .xlsx file.")
    if not data.startswith(b"PK"):
        raise CorruptError("Not a valid .xlsx file (it is not a zip package).")
    archive = ooxml.check_package(data)
    if ooxml.is_strict(archive):
        data = ooxml.to_transitional(archive)
    import openpyxl  # imported here so importing the parser registry stays cheap

    return openpyxl.load_workbook(
        io.BytesIO(data), read_only=True, data_only=True, keep_links=False, keep_vba=False
    )


def parse(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Parse an .xlsx/.xlsm workbook; `password` is ignored (encrypted files are refused)."""
    blocks: list[str] = []
    sections: list[Section] = []
    length = 0
    try:
        workbook = _open(data)
        try:
            for ws in workbook.worksheets:  # chart sheets are not among them
                first = True
                for block in _sheet_blocks(_rows(ws)):
                    if first:  # the sheet's name opens its section, as a heading would
                        first = False
                        block = f"{ws.title}\n\n{block}"
                        sections.append(Section(length + (2 if blocks else 0), (ws.title,)))
                    start = length + (2 if blocks else 0)
                    blocks.append(block)
                    length = start + len(block)
        finally:
            workbook.close()
    except ParseError:
        raise
    except Exception as exc:
        raise CorruptError(f"Could not read the workbook: {type(exc).__name__}: {exc}") from exc
    text = "\n\n".join(blocks)
    if not text.strip():
        raise NoTextError("The workbook contains no cell text.")
    return ParsedDocument(text=text, sections=sections, pages=[], page_count=None)
