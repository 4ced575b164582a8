"""Misbehaving parsers for the sandbox tests; `data` names the file to write the pid to."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from data.types import ParsedDocument
from ingest.errors import EncryptedError


def _record_pid(data: bytes) -> None:
    Path(data.decode().strip()).write_text(str(os.getpid()))


def hang(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Never return."""
    _record_pid(data)
    while True:
        time.sleep(3600)


def exit_3(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Leave the process with exit code 3, skipping all cleanup."""
    _record_pid(data)
    os._exit(3)


def sigkill(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Die by SIGKILL, like a process the OOM killer picked."""
    _record_pid(data)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def encrypted(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Refuse like a parser of a password-protected file."""
    raise EncryptedError(f"password-protected; supply the password (got {password!r})")


def buggy(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Fail with an exception that is not a ParseError."""
    raise KeyError("a parser bug")


def greedy(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Try to allocate 4 GiB."""
    blob = bytearray(4 * 1024**3)
    return ParsedDocument(text=str(len(blob)))


def echo_pid(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Return a small document naming the child's pid."""
    _record_pid(data)
    return ParsedDocument(text=f"pid {os.getpid()} password {password}", page_count=1)


def big(data: bytes, *, password: str | None = None) -> ParsedDocument:
    """Return a 30 MB document, far more than a pipe buffer holds."""
    return ParsedDocument(text="x" * 30_000_000, page_count=1)


def slow_pages(
    data: bytes, *, password: str | None = None, progress: Callable[[int, int], None] | None = None
) -> ParsedDocument:
    """Report 4 pages, 0.3 s apart, then hang: progress must arrive before any result."""
    assert progress is not None
    for page in range(1, 5):
        progress(page, 4)
        time.sleep(0.3)
    while True:
        time.sleep(3600)
