"""The PDF parser on real files from tests/fixtures/pdf (see ATTRIBUTION.md there)."""

from __future__ import annotations

import io
from pathlib import Path

import pypdf
import pytest

from data.types import ParsedDocument
from ingest.errors import CorruptError, EncryptedError, NoTextError
from ingest.parsers.pdf import PAGE_SEPARATOR, normalize, parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pdf"
ENCRYPTION_TEXT = "pdf encryption test\npassword: asdfzxcv"


def _parse(name: str, password: str | None = None) -> ParsedDocument:
    return parse((FIXTURES / name).read_bytes(), password=password)


def _page_of(doc: ParsedDocument, offset: int) -> int:
    return next(p.number for p in doc.pages if p.start <= offset < p.end)


def test_pages_are_contiguous_and_cover_the_text() -> None:
    doc = _parse("pagelabels.pdf")
    assert doc.page_count == 5
    assert [p.number for p in doc.pages] == [1, 2, 3, 4, 5]
    assert doc.pages[0].start == 0
    assert doc.pages[-1].end == len(doc.text)
    for before, after in zip(doc.pages, doc.pages[1:], strict=False):
        assert after.start == before.end + len(PAGE_SEPARATOR)
        assert doc.text[before.end : after.start] == PAGE_SEPARATOR


def test_page_spans_hold_exactly_that_pages_text() -> None:
    doc = _parse("pagelabels.pdf")
    second = doc.pages[1]
    assert doc.text[second.start : second.end] == "2 Second section\nSome text here...\niv"
    # Cross-check every page against pypdf, an independent extractor (whitespace aside).
    reader = pypdf.PdfReader(io.BytesIO((FIXTURES / "pagelabels.pdf").read_bytes()))
    for span, page in zip(doc.pages, reader.pages, strict=True):
        assert doc.text[span.start : span.end].split() == page.extract_text().split()


def test_page_labels_come_from_the_pdf() -> None:
    doc = _parse("pagelabels.pdf")
    assert [p.label for p in doc.pages] == ["iii", "iv", "1", "2", "1"]


def test_page_label_is_none_without_page_labels() -> None:
    doc = _parse("r4-owner-password.pdf")
    assert [p.label for p in doc.pages] == [None]


def test_known_sentence_is_on_its_page() -> None:
    doc = _parse("pagelabels.pdf")
    offset = doc.text.index("4 Heading on Level 1 (section)\nMore text here...")
    assert _page_of(doc, offset) == 5
    assert _page_of(doc, doc.text.index("3 Third section\nSome text")) == 3


def test_outline_becomes_sections_at_their_headings() -> None:
    doc = _parse("pagelabels.pdf")
    got = [(s.heading_path, _page_of(doc, s.start)) for s in doc.sections]
    assert got == [
        (("First section",), 1),
        (("Second section",), 2),
        (("Third section",), 3),
        (("Heading on Level 1 (section)",), 5),
    ]
    for section in doc.sections:
        # A section starts at its heading's line, numbering included ("2 Second section").
        assert section.start == 0 or doc.text[section.start - 1] == "\n"
        line = doc.text[section.start :].split("\n", 1)[0]
        assert section.heading_path[-1] in line


def test_normalize_cleans_without_rewording() -> None:
    raw = "  a\r\nb\x00c   d\t\te\x02f \r\n\r\n\r\n\r\ng\x0bh  "
    assert normalize(raw) == "a\nbc d ef\n\ngh"


def test_cjk_text() -> None:
    assert "心象スケッチ" in _parse("jo-japanese-vertical.pdf").text
    # Four characters is little, but real text: above the no-text threshold.
    assert _parse("ocr_test-chinese.pdf").text == "我是文字"


def test_damaged_file_that_pdfium_repairs_parses() -> None:
    assert _parse("simple1-no-xref.pdf").text.startswith("Hello World\nHello World")


def test_encrypted_without_password_is_refused() -> None:
    with pytest.raises(EncryptedError, match="password-protected; supply the password"):
        _parse("r4-aes-user-password.pdf")


@pytest.mark.parametrize(
    ("name", "password"),
    [
        ("r2-user-password.pdf", "asdfzxcv"),  # RC4-40
        ("r4-aes-user-password.pdf", "asdfzxcv"),  # AES-128
        ("r6-both-passwords.pdf", "foo"),  # AES-256, user password
        ("r6-both-passwords.pdf", "bar"),  # AES-256, owner password
        ("r4-owner-password.pdf", None),  # owner password only
        ("r4-owner-password.pdf", "not-needed"),
    ],
)
def test_encrypted_with_right_password_parses(name: str, password: str | None) -> None:
    doc = _parse(name, password)
    assert doc.text == ENCRYPTION_TEXT
    assert doc.pages[0].end == len(ENCRYPTION_TEXT)


@pytest.mark.parametrize("name", ["r4-aes-user-password.pdf", "r2-user-password.pdf"])
def test_encrypted_with_wrong_password_is_refused(name: str) -> None:
    with pytest.raises(EncryptedError, match="wrong password"):
        _parse(name, "asdf")


def test_unknown_password() -> None:
    with pytest.raises(EncryptedError):
        _parse("encrypted-file.pdf")


def test_scan_without_text_layer() -> None:
    with pytest.raises(NoTextError, match="OCR"):
        _parse("imagemagick-CCITTFaxDecode.pdf")


@pytest.mark.parametrize("name", ["crazyones-truncated.pdf", "docx-named-pdf.pdf"])
def test_corrupt_file_names_the_library_reason(name: str) -> None:
    with pytest.raises(CorruptError, match="PDFium: Data format error"):
        _parse(name)


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7\n", b"\x00" * 100])
def test_degenerate_bytes_are_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptError):
        parse(data)
