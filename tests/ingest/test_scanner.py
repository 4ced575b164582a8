"""Folder listing, and reading a listed file without following links, on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data.errors import InvalidInputError
from ingest.scanner import (
    DEFAULT_EXCLUDE,
    MAX_GLOBS,
    Matcher,
    SourceUnavailableError,
    UnsafeFileError,
    hash_file,
    open_file,
    scan,
)


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


@pytest.mark.parametrize("bad", [["../*.md"], ["[z-a]"], ["**/*.md"] * (MAX_GLOBS + 1)])
def test_bad_or_too_many_globs_are_refused(bad: list[str]) -> None:
    with pytest.raises(InvalidInputError):
        Matcher(bad, [])
    with pytest.raises(InvalidInputError):
        Matcher([], bad)


def _folder(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    for base, text in ((root, "mine"), (outside, "not yours")):
        (base / "sub").mkdir(parents=True)
        (base / "a.md").write_text(text)
        (base / "sub" / "b.md").write_text(text)
    return root, outside


def test_a_listed_file_is_read_as_it_is_now(tmp_path: Path) -> None:
    root, _ = _folder(tmp_path)
    files = scan(root, Matcher([], []))
    (root / "sub" / "b.md").write_text("mine, edited")  # a plain edit is read
    with files[1].open() as f:
        assert files[1].rel == "sub/b.md" and f.read() == b"mine, edited"
    with open_file(root, "a.md") as f:
        assert f.read() == b"mine"


def test_a_file_swapped_for_a_symlink_after_the_scan_is_not_followed(tmp_path: Path) -> None:
    root, outside = _folder(tmp_path)
    files = scan(root, Matcher([], []))
    (root / "a.md").unlink()
    os.symlink(outside / "a.md", root / "a.md")
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        files[0].open()
    with pytest.raises(UnsafeFileError):
        hash_file(files[0])


def test_a_folder_swapped_for_a_symlink_after_the_scan_is_not_followed(tmp_path: Path) -> None:
    root, outside = _folder(tmp_path)
    files = scan(root, Matcher([], []))
    (root / "sub").rename(tmp_path / "moved")
    os.symlink(outside / "sub", root / "sub")
    with pytest.raises(UnsafeFileError):
        files[1].open()


def test_the_folder_itself_swapped_for_a_symlink_is_not_followed(tmp_path: Path) -> None:
    root, outside = _folder(tmp_path)
    files = scan(root, Matcher([], []))
    root.rename(tmp_path / "moved")
    os.symlink(outside, root)
    with pytest.raises(UnsafeFileError):
        files[0].open()


def test_a_fifo_swapped_in_is_refused_without_hanging(tmp_path: Path) -> None:
    root, _ = _folder(tmp_path)
    files = scan(root, Matcher([], []))
    (root / "a.md").unlink()
    os.mkfifo(root / "a.md")  # opening it for reading would wait for a writer
    with pytest.raises(UnsafeFileError, match="regular file"):
        files[0].open()
