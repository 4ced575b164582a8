"""What every job handler of the single writer shares: fenced sessions, models, progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from data.leases import WRITER, fence
from data.models import Job
from data.protocols import Embedders
from ingest.blobs import BlobStore

Step = Callable[[str], None]
MAX_ERRORS = 100  # file errors kept on a job; the counters still count every one


@dataclass(frozen=True)
class ProcessorConfig:
    """Limits and sizes the processor works with."""

    parse_timeout_s: float = 120.0
    parse_memory_mb: int | None = 4096
    chunk_tokens: int = 0
    chunk_overlap_tokens: int = 24
    lease_ttl_s: float = 30.0
    max_file_mb: float = 100.0  # folder files over this are skipped, like uploads
    max_chars: int = 5_000_000  # extracted text beyond this fails `too_large` (0 = no cap)
    # format → "module:function"; None means the built-in parsers (tests plug in others).
    parsers: dict[str, str] | None = None


@dataclass
class Writer:
    """The writer's handles; `fenced()` sessions commit only while the lease is ours."""

    sessions: sessionmaker[Session]
    blobs: BlobStore
    embedders: Embedders
    config: ProcessorConfig
    holder: str
    on_step: Step = field(default=lambda _step: None)

    @contextmanager
    def fenced(self) -> Iterator[Session]:
        """A session whose transaction starts by renewing the writer lease (or raising)."""
        with self.sessions() as s:
            fence(s, WRITER, self.holder, self.config.lease_ttl_s)
            yield s


class Progress:
    """Counters and file errors of a running job, saved to its row now and then."""

    def __init__(self, job_id: int, every_s: float = 1.0) -> None:
        self.job_id = job_id
        self.counts: dict[str, Any] = {}
        self.errors: list[dict[str, str]] = []
        self.every_s = every_s
        self._saved = 0.0

    def add(self, key: str, n: int = 1) -> None:
        """Count `n` more of `key`."""
        self.counts[key] = int(self.counts.get(key, 0)) + n

    def set(self, key: str, value: Any) -> None:
        """Set a counter or a label outright."""
        self.counts[key] = value

    def error(self, file: str, code: str, message: str) -> None:
        """Record one file's failure (the first MAX_ERRORS are kept)."""
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"file": file, "code": code, "message": message[:500]})

    def write(self, job: Job) -> None:
        """Put the counters on the job row in the caller's transaction."""
        job.progress = {**self.counts, "errors": list(self.errors)}
        self._saved = time.monotonic()

    def maybe_save(self, writer: Writer, *, force: bool = False) -> None:
        """Persist at most once per `every_s` so pollers see movement without write storms."""
        if not force and time.monotonic() - self._saved < self.every_s:
            return
        with writer.fenced() as s:
            job = s.get(Job, self.job_id)
            if job is not None:
                self.write(job)
            s.commit()
