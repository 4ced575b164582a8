"""Document names: safe relative paths, never empty."""

from __future__ import annotations

import pytest

from data.errors import InvalidInputError
from ingest.uploads import clean_filename


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("sub/dir/a.txt", "sub/dir/a.txt"),
        ("C:\\Users\\me\\a.docx", "C:/Users/me/a.docx"),
        ("../../etc/passwd", "etc/passwd"),
        ("/abs/./x.md", "abs/x.md"),
        (" a\x00b\x07.txt ", "ab.txt"),
    ],
)
def test_clean_filename(raw: str, expected: str) -> None:
    assert clean_filename(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "/", "..", "./.", "\x00"])
def test_empty_names_are_refused(raw: str | None) -> None:
    with pytest.raises(InvalidInputError):
        clean_filename(raw)
