"""Tests for the DOCX parser, on documents built with python-docx and on real files."""

from __future__ import annotations

import io
from pathlib import Path

import docx
import pytest

from data.types import ErrorCode, ParsedDocument, Section
from ingest.errors import CorruptError, EncryptedError, NoTextError
from ingest.parsers.docx import HEADER_FOOTER_PATH, parse

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _save(document: docx.document.Document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _built() -> bytes:
    """A document with a title, nested headings, a table, an empty paragraph, header/footer."""
    document = docx.Document()
    document.add_heading("Handbook", 0)
    document.add_paragraph("Intro text.")
    document.add_heading("Chapter One", 1)
    document.add_paragraph("First para.")
    document.add_heading("Part A", 2)
    table = document.add_table(rows=2, cols=2)
    for (row, col), value in {
        (0, 0): "Name",
        (0, 1): "Qty",
        (1, 0): "Tea",
        (1, 1): "2\nboxes",
    }.items():
        table.cell(row, col).text = value
    document.add_paragraph("")
    document.add_heading("Chapter Two", 1)
    document.add_paragraph("Last.")
    section = document.sections[0]
    section.header.paragraphs[0].text = "ACME Confidential"
    section.footer.paragraphs[0].text = "Footer line"
    return _save(document)


BUILT_TEXT = (
    "Handbook\n\nIntro text.\n\n"
    "Chapter One\n\nFirst para.\n\n"
    "Part A\n\nName | Qty\nTea | 2 boxes\n\n"
    "Chapter Two\n\nLast.\n\n"
    "ACME Confidential\n\nFooter line"
)


def assert_sections_at_headings(doc: ParsedDocument) -> None:
    """Each heading section starts exactly where its heading's text begins."""
    for section in doc.sections:
        if section.heading_path != HEADER_FOOTER_PATH:
            title = section.heading_path[-1]
            assert doc.text[section.start : section.start + len(title)] == title


def test_built_document_text_sections_and_no_pages() -> None:
    doc = parse(_built())
    assert doc.text == BUILT_TEXT
    assert doc.sections == [
        Section(0, ("Handbook",)),
        Section(BUILT_TEXT.index("Chapter One"), ("Handbook", "Chapter One")),
        Section(BUILT_TEXT.index("Part A"), ("Handbook", "Chapter One", "Part A")),
        Section(BUILT_TEXT.index("Chapter Two"), ("Handbook", "Chapter Two")),
        Section(BUILT_TEXT.index("ACME"), HEADER_FOOTER_PATH),
    ]
    assert_sections_at_headings(doc)
    assert doc.pages == [] and doc.page_count is None


def test_headers_repeated_across_sections_appear_once() -> None:
    document = docx.Document()
    document.add_paragraph("Body one.")
    document.sections[0].header.paragraphs[0].text = "Same header"
    document.add_section()
    document.add_paragraph("Body two.")
    new = document.sections[1].header
    new.is_linked_to_previous = False
    new.paragraphs[0].text = "Same header"
    assert parse(_save(document)).text == "Body one.\n\nBody two.\n\nSame header"


def test_real_paragraphs_and_nested_table() -> None:
    doc = parse((FIXTURES / "docx" / "blk-paras-and-tables.docx").read_bytes())
    assert doc.text == (
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n\n"
        "Text before Table Between Text after\n\n"
        "Donec semper facilisis metus finibus malesuada.\n\n"
        "Left-side | Right-side\n\n"
        "Copyright | Page-number"
    )
    assert doc.sections == [Section(doc.text.index("Left-side"), HEADER_FOOTER_PATH)]


def test_real_headings() -> None:
    doc = parse((FIXTURES / "docx" / "category-level.docx").read_bytes())
    assert doc.text.startswith("Call me Ishmael.")
    assert [s.heading_path for s in doc.sections] == [
        ("A Heading 1",),
        ("A Heading 1", "A Heading 2"),
        ("Another Heading 1",),
    ]
    assert_sections_at_headings(doc)


def test_real_tables_with_nesting_and_merges() -> None:
    doc = parse((FIXTURES / "docx" / "docx-tables.docx").read_bytes())
    assert doc.text == (
        "Simple uniform table\n\n"
        "Header Col 1 | Header Col 2\nLorem ipsum | A link example\n\n"
        "Nested Table\n\n"
        "a | >b< | c\nd | e | f g&t | h | i\nj | k | l\n\n"
        "Table with merged cells\n\n"
        "a | b\n | c | d\ne | "
    )


def test_real_headers_footers_skip_vmerge_leftovers() -> None:
    doc = parse((FIXTURES / "docx" / "docx-hdrftr.docx").read_bytes())
    assert doc.text.startswith("Main document\n\nFirst header para\n\n")
    assert "I should not be included" not in doc.text
    assert "cell1 | a b | | c | d | | e f" in doc.text


def test_empty_document_raises_no_text() -> None:
    with pytest.raises(NoTextError):
        parse(_save(docx.Document()))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not a zip at all", "not a zip"),
        ((FIXTURES / "other" / "empty.xlsx").read_bytes(), "not a Word file"),
        ((FIXTURES / "other" / "fake.doc").read_bytes(), "Word 97-2003"),
        (_built()[:2000], "not a zip"),
    ],
    ids=["text", "xlsx", "legacy-doc", "truncated"],
)
def test_unreadable_files_raise_corrupt(data: bytes, reason: str) -> None:
    with pytest.raises(CorruptError, match=reason) as info:
        parse(data)
    assert info.value.code is ErrorCode.CORRUPT


def test_encrypted_office_file_raises_encrypted() -> None:
    with pytest.raises(EncryptedError):
        parse((FIXTURES / "other" / "password_protected.xlsx").read_bytes(), password="x")
