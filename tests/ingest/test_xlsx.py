"""Tests for the XLSX parser, on workbooks built with openpyxl and on real files."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter
from openpyxl.chart import BarChart, Reference

from data.types import Section
from ingest.errors import EncryptedError, NoTextError
from ingest.parsers import xlsx
from ingest.parsers.xlsx import parse

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _save(workbook: openpyxl.Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _book() -> bytes:
    """Two sheets, a chart sheet, a merged category, a gap, a formula, a title row."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sales"
    ws.append(["Sales 2024"])  # a title above the table
    ws.append(["Region", "Product", "Units"])
    ws.append(["North", "Tea", 3])
    ws.append([None, "Coffee", 4.0])
    ws.merge_cells("A3:A4")  # North spans both rows
    ws.append([])
    ws.append([])
    ws.append(["Note", "Value"])  # after a gap, with another width: a new table
    ws.append(["Total", "=C3+C4"])
    ws["B9"].value = "=C3+C4"
    other = wb.create_sheet("Staff")
    other.append(["Name", "Since"])
    other.append(["Ann | Lee", 2019])
    chart = wb.create_chartsheet("Chart")
    bar = BarChart()
    bar.add_data(Reference(ws, min_col=3, min_row=2, max_row=4), titles_from_data=True)
    chart.add_chart(bar)
    return _save(wb)


def test_sheets_rows_merges_gaps_and_chart_sheet() -> None:
    parsed = parse(_book())
    assert parsed.text == (
        "Sales\n\nSales 2024\n| Region | Product | Units |\n| --- | --- | --- |\n"
        "| North | Tea | 3 |\n| North | Coffee | 4 |\n\n"
        "| Note | Value |\n| --- | --- |\n| Total |  |\n\n"  # never calculated: no cached value
        "Staff\n\n| Name | Since |\n| --- | --- |\n| Ann \\| Lee | 2019 |"
    )
    assert parsed.sections == [
        Section(0, ("Sales",)),
        Section(parsed.text.index("Staff"), ("Staff",)),
    ]
    assert parsed.pages == [] and parsed.page_count is None


def test_cached_formula_values_are_read() -> None:
    """A workbook saved by Excel holds each formula's last value; that is what is shown."""
    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer) as wb:
        ws = wb.add_worksheet("Calc")
        ws.write_row(0, 0, ["a", "twice a"])
        ws.write_number(1, 0, 21)
        ws.write_formula(1, 1, "=A2*2", None, 42)  # the value Excel would have cached
    parsed = parse(buffer.getvalue())
    assert parsed.text == "Calc\n\n| a | twice a |\n| --- | --- |\n| 21 | 42 |"


def test_long_sheet_repeats_its_header_per_block_with_bounded_memory() -> None:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Log")
    ws.append(["when", "what"])
    for i in range(20_000):
        ws.append([i, f"event number {i}"])
    data = _save(wb)
    tracemalloc.start()
    parsed = parse(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    blocks = parsed.text.split("\n\n")[1:]
    assert len(blocks) > 100
    assert all(b.startswith("| when | what |\n| --- | --- |\n") for b in blocks)
    assert all(len(b) <= xlsx.BLOCK_CHARS + 100 for b in blocks)
    assert "| 19999 | event number 19999 |" in parsed.text
    # The rows are streamed: the peak is the text (about 2.5 MB here, as str) and parts,
    # not 40,000 cell objects at once.
    assert peak < 12 * len(parsed.text)


def test_real_workbooks() -> None:
    cups = parse((FIXTURES / "xlsx" / "stanley-cups.xlsx").read_bytes())
    assert "| Team | Location | Stanley Cups |\n| --- | --- | --- |\n| Blues | STL | 1 |" in (
        cups.text
    )
    assert [s.heading_path for s in cups.sections] == [
        ("Stanley Cups",),
        ("Stanley Cups Since 67",),
    ]
    vodafone = parse((FIXTURES / "xlsx" / "vodafone.xlsx").read_bytes())
    # Column A is empty: dropped, not shown as an empty first column.
    assert "Financial performance\n| Topic | Period |" in vodafone.text


def test_empty_and_encrypted_workbooks() -> None:
    with pytest.raises(NoTextError):
        parse((FIXTURES / "other" / "empty.xlsx").read_bytes())
    with pytest.raises(EncryptedError):
        parse((FIXTURES / "other" / "password_protected.xlsx").read_bytes())
