"""Every PDF fixture through the sandbox: parsed with text or one specific refusal, no crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.types import ErrorCode
from ingest.errors import ParseError
from ingest.sandbox import parse_in_subprocess

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pdf"

# fixture, password, expected outcome ("parsed" or the ErrorCode a user would see)
EXPECTED: list[tuple[str, str | None, str | ErrorCode]] = [
    ("pagelabels.pdf", None, "parsed"),
    ("simple1-no-xref.pdf", None, "parsed"),
    ("jo-japanese-vertical.pdf", None, "parsed"),
    ("ocr_test-chinese.pdf", None, "parsed"),
    ("r2-user-password.pdf", None, ErrorCode.ENCRYPTED),
    ("r2-user-password.pdf", "asdfzxcv", "parsed"),
    ("r4-aes-user-password.pdf", None, ErrorCode.ENCRYPTED),
    ("r4-aes-user-password.pdf", "wrong", ErrorCode.ENCRYPTED),
    ("r4-aes-user-password.pdf", "asdfzxcv", "parsed"),
    ("r6-both-passwords.pdf", "foo", "parsed"),
    ("r4-owner-password.pdf", None, "parsed"),
    ("encrypted-file.pdf", None, ErrorCode.ENCRYPTED),
    ("imagemagick-CCITTFaxDecode.pdf", None, ErrorCode.NO_TEXT),
    ("crazyones-truncated.pdf", None, ErrorCode.CORRUPT),
    ("docx-named-pdf.pdf", None, ErrorCode.CORRUPT),
]


def test_table_covers_every_fixture() -> None:
    assert {p.name for p in FIXTURES.glob("*.pdf")} == {name for name, _, _ in EXPECTED}


@pytest.mark.parametrize(("name", "password", "expected"), EXPECTED)
def test_outcome(name: str, password: str | None, expected: str | ErrorCode) -> None:
    try:
        doc = parse_in_subprocess(
            "ingest.parsers.pdf:parse", str(FIXTURES / name), password=password, timeout_s=30
        )
    except ParseError as exc:
        assert exc.code == expected, exc.message
        assert exc.message
        return
    assert expected == "parsed"
    assert doc.text.strip()
    assert doc.page_count == len(doc.pages) >= 1
