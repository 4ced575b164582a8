"""Tests for the plain-text parser and the shared encoding detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.types import ErrorCode, ParsedDocument
from ingest.errors import NoTextError
from ingest.parsers.text import decode_text, parse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "text"
FAKE_TEXT = (
    "This is a test document to use for unit tests.\n\n"
    "    Doylestown, PA 18901\n\n"
    "    Important points:\n\n"
    "       - Hamburgers are delicious\n"
    "       - Dogs are the best\n"
    "       - I love fuzzy blankets"
)
SAMPLE = "Grüße aus Köln – “quoted” text.\nSecond line."


@pytest.mark.parametrize(
    "codec",
    ["utf-8", "utf-8-sig", "utf-16", "utf-32", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"],
)
def test_decode_text_unicode_with_and_without_bom(codec: str) -> None:
    assert decode_text(SAMPLE.encode(codec)) == SAMPLE


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("Die schöne Frau hat einen Kaffee mit Kuchen gegessen. Preis: 15,50 €.", "cp1252"),
        ("L'été était très chaud cette année. J'ai acheté un café au lait.", "cp1252"),
        ("Grüße aus Köln, schöne Straße, große Übung.", "latin-1"),
        ("Привет, как дела? Это тестовый текст на русском языке.", "cp1251"),
        ("中文文本测试，这是一个简单的句子，用来检查编码识别。", "gb18030"),
        ("繁體中文測試，這是一個句子，用來檢查編碼識別。", "big5"),
        ("日本語のテキストです。これはエンコーディングのテストです。", "shift_jis"),
    ],
)
def test_decode_text_legacy_encodings(text: str, codec: str) -> None:
    assert decode_text(text.encode(codec)) == text


def test_decode_text_normalises_newlines_nuls_and_bom() -> None:
    assert decode_text(b"\xef\xbb\xbfa\r\nb\rc\x00d\n") == "a\nb\ncd\n"


@pytest.mark.parametrize(
    "name", ["fake-text-utf-16.txt", "fake-text-utf-16-le.txt", "fake-text-utf-32.txt"]
)
def test_parse_wide_encoded_fixtures(name: str) -> None:
    doc = parse((FIXTURES / name).read_bytes())
    assert doc == ParsedDocument(text=FAKE_TEXT, pages=[], sections=[], page_count=None)


def test_parse_utf16_be_without_bom() -> None:
    doc = parse((FIXTURES / "fake-text-utf-16-be.txt").read_bytes())
    assert doc.text.startswith("This is a test document to use for unit tests.\n\nDoylestown")
    assert doc.text.endswith("- I love fuzzy blankets\n")


def test_parse_latin1_markdown_source_as_text() -> None:
    doc = parse((FIXTURES / "umlauts-non-utf8.md").read_bytes())
    assert doc.text == "## können\n\nkönnen\n\näöüß\n"


@pytest.mark.parametrize("name", ["empty.txt", "fake-text-all-whitespace.txt"])
def test_parse_empty_raises_no_text(name: str) -> None:
    with pytest.raises(NoTextError) as info:
        parse((FIXTURES / name).read_bytes())
    assert info.value.code is ErrorCode.NO_TEXT


def test_parse_ignores_password() -> None:
    assert parse(b"hello\r\n", password="secret").text == "hello\n"
