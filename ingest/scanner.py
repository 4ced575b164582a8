"""Listing a watched folder: files matching include/exclude globs, with size and mtime."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from data.globs import glob_regex

DEFAULT_INCLUDE = ["**/*"]
# Hidden files and folders, Office lock files, editor backups and temp files.
DEFAULT_EXCLUDE = ["**/.*", "**/.*/**", "**/~$*", "**/*~", "**/*.tmp"]
_READ = 1 << 20


class SourceUnavailableError(Exception):
    """The folder is missing or unreadable; nothing is deleted because of it."""


@dataclass(frozen=True)
class FileEntry:
    """One file of a folder: its path relative to the folder (with '/'), size and mtime."""

    rel: str
    path: Path
    size: int
    mtime_ns: int


class Matcher:
    """Whether a relative path is included and not excluded."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        self.include = [glob_regex(p) for p in include or DEFAULT_INCLUDE]
        self.exclude = [glob_regex(p) for p in exclude]

    def __call__(self, rel: str) -> bool:
        """True when `rel` should be indexed."""
        if not any(r.match(rel) for r in self.include):
            return False
        return not any(r.match(rel) for r in self.exclude)


def scan(root: Path, matcher: Matcher) -> list[FileEntry]:
    """Regular files under `root`, recursively; symlinks are not followed (they could leave it)."""
    if not root.is_dir() or not os.access(root, os.R_OK | os.X_OK):
        raise SourceUnavailableError(f"folder {root} is missing or unreadable")
    out: list[FileEntry] = []

    def unreadable(err: OSError) -> None:
        # A sub-folder we can't list must not look empty: that would delete its documents.
        raise SourceUnavailableError(f"can't list {err.filename}: {err.strerror}") from err

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        for name in sorted(filenames):
            path = base / name
            try:
                st = path.lstat()
            except OSError:
                continue  # vanished while we listed
            if not path.is_file() or path.is_symlink():
                continue
            rel = path.relative_to(root).as_posix()
            if matcher(rel):
                out.append(FileEntry(rel=rel, path=path, size=st.st_size, mtime_ns=st.st_mtime_ns))
    return out


def hash_file(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_READ):
            digest.update(block)
    return digest.hexdigest()
