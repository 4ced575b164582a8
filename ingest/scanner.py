"""Listing a watched folder (files matching include/exclude globs), and reading its files."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from data.errors import InvalidInputError
from data.globs import Glob

DEFAULT_INCLUDE = ["**/*"]
# Hidden files and folders, Office lock files, editor backups and temp files.
DEFAULT_EXCLUDE = ["**/.*", "**/.*/**", "**/~$*", "**/*~", "**/*.tmp"]
MAX_GLOBS = 64  # include and exclude patterns, each, per folder
_READ = 1 << 20
# O_PATH: walking through a folder needs only its search right, as a path lookup does.
_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW
# O_NONBLOCK: a FIFO swapped in for a file must not hang the open; fstat then refuses it.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


class SourceUnavailableError(Exception):
    """The folder is missing or unreadable; nothing is deleted because of it."""


class UnsafeFileError(OSError):
    """A symlink, or something not a regular file, took the listed file's place; not followed."""

    code = "unsafe_path"


@dataclass(frozen=True)
class FileEntry:
    """One file of a folder: its path relative to the folder (with '/'), size and mtime."""

    root: Path
    rel: str
    size: int
    mtime_ns: int

    def open(self) -> BinaryIO:
        """The file's bytes as they are now, never through a symlink (see `open_file`)."""
        return open_file(self.root, self.rel)


class Matcher:
    """Whether a relative path is included and not excluded."""

    def __init__(self, include: Sequence[str], exclude: Sequence[str]) -> None:
        if len(include) > MAX_GLOBS or len(exclude) > MAX_GLOBS:
            raise InvalidInputError(f"at most {MAX_GLOBS} include and {MAX_GLOBS} exclude globs")
        self.include = [Glob(p) for p in include or DEFAULT_INCLUDE]
        self.exclude = [Glob(p) for p in exclude]

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
            if not stat.S_ISREG(st.st_mode):
                continue  # a symlink, FIFO, socket or device
            rel = path.relative_to(root).as_posix()
            if matcher(rel):
                out.append(FileEntry(root, rel, size=st.st_size, mtime_ns=st.st_mtime_ns))
    return out


def open_file(root: Path, rel: str) -> BinaryIO:
    """Open `root/rel` for reading, refusing (UnsafeFileError) a symlink anywhere on the way.

    A scan lists regular files, but the folder can change before one is read: a file, or a
    folder above it, swapped for a symlink would lead outside the source roots. So the path
    is walked one name at a time from '/', none followed if it is a link; `root` is stored
    resolved (ingest.sources.allowed_path), so a link there was swapped in too.
    """
    names = [*Path(os.path.abspath(root)).parts[1:], *rel.split("/")]
    fd = os.open("/", _DIR_FLAGS)
    try:
        for name in names[:-1]:
            parent, fd = fd, -1
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            finally:
                os.close(parent)
        file_fd = os.open(names[-1], _FILE_FLAGS, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
            raise UnsafeFileError(f"{rel}: a symbolic link is in its place or on its path") from exc
        raise
    finally:
        if fd >= 0:
            os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        raise UnsafeFileError(f"{rel}: no longer a regular file")
    return os.fdopen(file_fd, "rb")


def hash_file(f: FileEntry) -> str:
    """SHA-256 of a folder file's bytes."""
    digest = hashlib.sha256()
    with f.open() as fh:
        while block := fh.read(_READ):
            digest.update(block)
    return digest.hexdigest()
