"""One document's progress on its ingest job's row, saved while the work runs.

The job's `progress` JSON carries it (no column of its own): `stage` (parsing, chunking,
embedding, indexed), `pages_parsed`/`pages_total` for paged formats, `chunks_total`, and
`chunks_embedded` of `chunks_to_embed` (texts no stored vector covers yet).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from data.models import Job
from data.types import ParsedDocument
from ingest.writer import Writer

SAVE_EVERY_S = 1.0  # pollers see movement without a write per page or per batch
PARSE_POLL_S = 0.25  # how often a parse that runs meanwhile is checked on


class JobProgress:
    """Progress of one ingest job; values may come from another thread, saves do not."""

    def __init__(self, writer: Writer, job_id: int | None, every_s: float = SAVE_EVERY_S) -> None:
        self.w = writer
        self.job_id = job_id
        self.every_s = every_s
        self.values: dict[str, Any] = {}
        self._owner = threading.get_ident()
        self._lock = threading.Lock()
        self._saved = 0.0
        self._dirty = False

    def update(self, **values: Any) -> None:
        """Set progress values (saved at the next `save`)."""
        with self._lock:
            self.values.update(values)
            self._dirty = True

    def pages(self, done: int, total: int) -> None:
        """The parser's page count so far; saved at once when told in the owner's thread."""
        self.update(pages_parsed=done, pages_total=total)
        if threading.get_ident() == self._owner:
            self.save()

    def parse(
        self, parse: Callable[[], ParsedDocument], between: Callable[[], None] | None
    ) -> ParsedDocument:
        """Run `parse` as stage "parsing"; with `between`, the parse runs in a helper thread
        (it only waits on the sandbox child) and the wait is spent in `between()` here."""
        self.update(stage="parsing")
        self.save(force=True)
        if between is None:
            parsed = parse()
        else:
            with ThreadPoolExecutor(1, thread_name_prefix="parse") as pool:
                future = pool.submit(parse)
                while True:
                    try:
                        parsed = future.result(timeout=PARSE_POLL_S)
                        break
                    except FutureTimeout:
                        between()
                        self.save()
        if parsed.page_count:
            self.update(pages_parsed=parsed.page_count, pages_total=parsed.page_count)
        return parsed

    def batch(self, between: Callable[[], None] | None, done: int, total: int) -> None:
        """After an embedding batch (seconds of work each): save, then give other work its
        turn if more remains."""
        self.update(chunks_embedded=done, chunks_to_embed=total)
        self.save(force=True)
        if between is not None and done < total:
            between()

    def save(self, *, force: bool = False) -> None:
        """Write the values to the job row, at most once per `every_s` unless forced."""
        if self.job_id is None or not self._dirty:
            return
        if not force and time.monotonic() - self._saved < self.every_s:
            return
        with self._lock:
            values, self._dirty = dict(self.values), False
        with self.w.fenced() as s:
            job = s.get(Job, self.job_id)
            if job is not None:
                job.progress = {**job.progress, **values}
            s.commit()
        self._saved = time.monotonic()
