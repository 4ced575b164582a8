"""Tests for magic-byte format detection and the parser registry."""

from __future__ import annotations

import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ingest.detect import HEAD_BYTES, MEDIA_TYPES, UnsupportedTypeError, detect_format
from ingest.parsers import PARSERS

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _detect_file(path: Path, *, with_path: bool) -> str:
    head = path.read_bytes()[:HEAD_BYTES]
    return detect_format(head, path.name, path=str(path) if with_path else None)


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "report.pdf", "pdf"),
        (b"\x00" * 100 + b"%PDF-1.4\n", "no-extension", "pdf"),
        (b"<!DOCTYPE html><html><body>x</body></html>", "page.txt", "html"),
        (b'<?xml version="1.0"?>\n<!-- c -->\n<html xmlns="x"><body>x', "filing.htm", "html"),
        (b"\n  <HTML><p>hi</p>", "upload", "html"),
        (b"<div><p>fragment</p></div>", "snippet.html", "html"),
        (b"no tags in here", "notes.html", "text"),
        (b"<p>tags but a .txt</p>", "notes.txt", "text"),
        (b"# Title\n\nSome *markdown*.", "README.md", "markdown"),
        (b"# Title", "notes.MARKDOWN", "markdown"),
        (b"# Title", "notes.txt", "text"),
        ("Grüße\r\n".encode("cp1252"), "legacy.txt", "text"),
        ("Grüße".encode("utf-16"), "wide.txt", "text"),
        ("plain".encode("utf-16-le"), "wide.txt", "text"),
        ("<html><body>wide</body></html>".encode("utf-32-be"), "page", "html"),
        (b"", "empty.txt", "text"),
        (b"a,b\n1,2\n", "data.csv", "text"),
    ],
)
def test_supported_formats(head: bytes, filename: str, expected: str) -> None:
    assert detect_format(head, filename) == expected


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG image is not supported."),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG image is not supported."),
        (b"GIF89a\x01\x00", "GIF image is not supported."),
        (b"\x1f\x8b\x08\x00", "gzip archive is not supported."),
        (b"\x7fELF\x02\x01\x01", "ELF executable is not supported."),
        (b"{\\rtf1\\ansi hello}", "RTF document is not supported."),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 8, "legacy Office"),
        (b"MZ\x90\x00\x03\x00\x00\x00", "binary file"),
        (bytes(range(256)) * 4, "binary file"),
        (b"text" + b"\x01\x02\x03\x04\x05" * 20, "binary file"),
    ],
)
def test_unsupported_binaries(head: bytes, message: str) -> None:
    with pytest.raises(UnsupportedTypeError, match=message.replace(".", r"\.")):
        detect_format(head, "upload.txt")


@pytest.mark.parametrize("with_path", [False, True])
@pytest.mark.parametrize(
    "name", ["blk-paras-and-tables.docx", "category-level.docx", "docx-hdrftr.docx"]
)
def test_real_docx(name: str, with_path: bool) -> None:
    assert _detect_file(FIXTURES / "docx" / name, with_path=with_path) == "docx"


@pytest.mark.parametrize("with_path", [False, True])
@pytest.mark.parametrize(("name", "expected"), [("empty.xlsx", "xlsx"), ("minimal.pptx", "pptx")])
def test_real_office_files(name: str, expected: str, with_path: bool) -> None:
    assert _detect_file(FIXTURES / "other" / name, with_path=with_path) == expected


def test_xlsb_and_office_names_without_their_part(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsb"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.bin", b"\x00" * 10)
    with pytest.raises(UnsupportedTypeError, match=r"Excel binary workbooks \(.xlsb\)"):
        detect_format(path.read_bytes(), "book.xlsb", path=str(path))
    late = _late_word_zip(tmp_path / "late.zip").read_bytes()[:HEAD_BYTES]
    assert detect_format(late, "deck.pptx") == "pptx"
    assert detect_format(late, "macros.xlsm") == "xlsx"


@pytest.mark.parametrize("with_path", [False, True])
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("simple.odt", "OpenDocument text (.odt) files are not supported."),
        ("simple.zip", "zip archives are not supported."),
        ("password_protected.xlsx", "password-protected Office file is not supported."),
        ("fake.doc", "legacy Office (.doc/.xls/.ppt/.msg)"),
    ],
)
def test_real_unsupported_files(name: str, message: str, with_path: bool) -> None:
    with pytest.raises(UnsupportedTypeError) as info:
        _detect_file(FIXTURES / "other" / name, with_path=with_path)
    assert message in info.value.message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("text/fake-text-utf-16-be.txt", "text"),
        ("text/fake-text-utf-32.txt", "text"),
        ("text/umlauts-non-utf8.md", "markdown"),
        ("html/example-steelJIS-datasheet-utf-16.html", "html"),
        ("html/fake-html-cp1252.html", "html"),
    ],
)
def test_real_text_files(name: str, expected: str) -> None:
    assert _detect_file(FIXTURES / name, with_path=False) == expected


def _late_word_zip(path: Path) -> Path:
    """A Word-like zip whose word/ member starts after the first 8 KiB."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("customXml/item1.xml", "x" * (HEAD_BYTES + 100))
        archive.writestr("word/document.xml", "<w:document/>")
    return path


def test_zip_with_late_word_part(tmp_path: Path) -> None:
    path = _late_word_zip(tmp_path / "late.docx")
    head = path.read_bytes()[:HEAD_BYTES]
    assert detect_format(head, "late.docx", path=str(path)) == "docx"
    assert detect_format(head, "late.docx") == "docx"  # by name; the parser checks the rest
    assert detect_format(head, "late.bin", path=str(path)) == "docx"
    with pytest.raises(UnsupportedTypeError, match="zip archives"):
        detect_format(head, "late.zip")


def test_registry_covers_every_media_type() -> None:
    assert (
        set(PARSERS)
        == set(MEDIA_TYPES)
        == {
            "pdf",
            "docx",
            "pptx",
            "xlsx",
            "markdown",
            "html",
            "text",
        }
    )
    for fmt, target in PARSERS.items():
        module_name, _, function = target.partition(":")
        if fmt == "pdf":
            continue  # its parser is tested on its own
        assert callable(getattr(importlib.import_module(module_name), function))


def test_importing_registry_and_detection_loads_no_parser_library() -> None:
    code = (
        "import sys, ingest.parsers, ingest.detect; "
        "heavy = {'bs4', 'docx', 'markdown_it', 'charset_normalizer', 'lxml', 'pypdf', "
        "'pptx', 'openpyxl', 'defusedxml'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    root = Path(__file__).parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.stdout.strip() == "[]", result.stderr
