"""Folder listing and glob rules, on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data.errors import InvalidInputError
from ingest.scanner import DEFAULT_EXCLUDE, Matcher, SourceUnavailableError, glob_regex, scan


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**/*.pdf", "a.pdf", True),
        ("**/*.pdf", "x/y/a.pdf", True),
        ("**/*.pdf", "a.pdf.txt", False),
        ("*.pdf", "x/a.pdf", False),
        ("docs/**", "docs/a/b.md", True),
        ("docs/**", "other/docs/b.md", False),
        ("**/*.PDF", "report.pdf", True),  # case-insensitive
        ("report-?.md", "report-1.md", True),
        ("report-[!0-9].md", "report-1.md", False),
        ("report-[!0-9].md", "report-x.md", True),
    ],
)
def test_glob_rules(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_regex(pattern).match(path)) is matches


@pytest.mark.parametrize("bad", ["", "/etc/*", "../*.md", "a/../../b"])
def test_globs_that_could_escape_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        glob_regex(bad)


def test_scan_lists_matching_files_and_skips_hidden_temp_and_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for rel in [
        "a.md",
        "sub/b.pdf",
        "sub/deep/c.txt",
        ".git/config",
        "sub/.cache/x.md",
        "~$doc.docx",
        "notes.md~",
        "d.tmp",
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    os.symlink(outside, root / "link.txt")
    files = scan(root, Matcher(["**/*"], DEFAULT_EXCLUDE))
    assert [f.rel for f in files] == ["a.md", "sub/b.pdf", "sub/deep/c.txt"]
    assert files[0].size == 4 and files[0].mtime_ns == (root / "a.md").stat().st_mtime_ns
    only_pdf = scan(root, Matcher(["**/*.pdf"], ["sub/deep/**"]))
    assert [f.rel for f in only_pdf] == ["sub/b.pdf"]


def test_scan_of_a_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailableError):
        scan(tmp_path / "gone", Matcher([], []))


def test_a_sub_folder_that_cannot_be_listed_fails_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not an empty listing (which would delete its documents): the whole scan fails.

    Tests run as root here, which chmod can't lock out, so the listing error is injected.
    """
    root = tmp_path / "root"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "a.md").write_text("a")
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(SourceUnavailableError, match="locked"):
        scan(root, Matcher([], []))
