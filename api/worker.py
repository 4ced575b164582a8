"""The single writer: elected by a lease in SQL, runs queued jobs, checkpoints indexes."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from api import failpoints
from api.container import Container
from data import audit
from data.errors import LeaseLostError
from data.jobs import SizeClasses, claim_next, finish, recover_orphans
from data.leases import WRITER, release, try_acquire
from data.models import Collection, Document, Job
from data.retry import Backoff, is_transient
from data.types import DocumentStatus, ErrorCode
from ingest.parsers import parsers_for
from ingest.processor import JobProcessor, ProcessorConfig
from ingest.rebuild import purge_retired
from ingest.scheduler import tick
from ingest.sealed import discard

log = logging.getLogger(__name__)
_PRUNE_EVERY_S = 3600.0  # audit retention: at the first idle turn, then hourly
# Longest run of small uploads inside one pause of a large one, so it too moves on.
INTERLEAVE_S = 30.0


class Worker:
    """Runs jobs while it holds the writer lease; a second worker waits on standby."""

    def __init__(
        self,
        container: Container,
        holder: str | None = None,
        clock: Callable[[], datetime] | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self.c = container
        # Injectable so tests fire the schedule with tick(now) instead of waiting for it.
        self.clock = clock or (lambda: datetime.now(UTC))
        self.settings = container.settings.worker
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        ing = container.settings.ingest
        config = ProcessorConfig(
            parse_timeout_s=ing.parse_timeout_s,
            parse_memory_mb=ing.parse_memory_mb or None,
            chunk_tokens=ing.chunk_tokens,
            chunk_overlap_tokens=ing.chunk_overlap_tokens,
            lease_ttl_s=self.settings.lease_ttl_s,
            max_file_mb=ing.max_upload_mb,
            max_chars=ing.max_chars,
            parsers=parsers_for(docx_comments=ing.docx_comments),
        )
        self.classes = SizeClasses(
            small_bytes=int(self.settings.small_job_mb * 1_000_000),
            max_wait_s=self.settings.large_job_max_wait_s,
        )
        self.processor = JobProcessor(
            container.sessions,
            container.blobs,
            container.embedders,
            config,
            self.holder,
            on_step=on_step or failpoints.hit,
            between=self.run_small_jobs if self.classes.small_bytes > 0 else None,
        )
        self._in_between = False
        self._stop = threading.Event()
        self._leader = False
        self._last_checkpoint = time.monotonic()
        self._last_prune: float | None = None

    def stop(self) -> None:
        """Ask the loop to finish the current job and exit."""
        self._stop.set()

    def acquire(self) -> bool:
        """Try to become the writer; on success adopt jobs a dead writer left behind."""
        with self.c.sessions() as s:
            if not try_acquire(s, WRITER, self.holder, self.settings.lease_ttl_s):
                return False
            if not self._leader:
                n = recover_orphans(s)
                if n:
                    log.warning("requeued %d job(s) left running by a dead worker", n)
        if not self._leader:
            self._leader = True
            self.catch_up_all()
        return True

    def catch_up_all(self) -> None:
        """Replay every collection's missing index tail from SQL and save it."""
        with self.c.sessions() as s:
            colls = s.scalars(select(Collection).where(Collection.embedder_dim.is_not(None)))
            for coll in colls:
                assert coll.embedder_dim is not None
                self.c.indexes.current(s, coll.id, coll.generation, coll.embedder_dim)
        self.checkpoint()

    def checkpoint(self) -> None:
        """Write every index that moved since its file was saved."""
        with self.c.sessions() as s:
            colls = s.scalars(select(Collection).where(Collection.embedder_dim.is_not(None)))
            for coll in colls.all():
                meta = {"collection_id": coll.id, "model_id": coll.embedder_model_id}
                self.c.indexes.reshape(s, coll.id, coll.generation)
                if self.c.indexes.checkpoint(coll.id, coll.generation, meta):
                    failpoints.hit("after_checkpoint")
                # BM25 is written here, not per job: at once when the queue runs dry, and
                # every checkpoint_interval_s during a long one.
                self.c.lexical.sync(s, coll.id, coll.generation)
        self._last_checkpoint = time.monotonic()

    def tick(self, now: datetime | None = None) -> list[int]:
        """Queue the reindex jobs of every folder due at `now` (default: the clock); leader only."""
        if not self.acquire():
            return []
        with self.c.sessions() as s:
            return tick(s, now or self.clock(), holder=self.holder, ttl_s=self.settings.lease_ttl_s)

    def purge_retired(self, now: datetime | None = None) -> int:
        """Remove index generations a rebuild replaced more than retire_after_s ago."""
        if not self._leader:
            return 0
        return purge_retired(self.processor.w, now or self.clock(), self.settings.retire_after_s)

    def prune_audit(self, now: datetime | None = None) -> int:
        """Delete audit events older than the retention (`now` default: the clock); leader only."""
        if not self._leader:
            return 0
        self._last_prune = time.monotonic()
        cutoff = (now or self.clock()) - timedelta(days=self.c.settings.audit.retention_days)
        with self.c.sessions() as s:
            n = audit.prune(s, cutoff)
        if n:
            log.info("pruned %d audit event(s) older than %s", n, cutoff.isoformat())
        return n

    def _prune_due(self) -> bool:
        return self._last_prune is None or time.monotonic() - self._last_prune > _PRUNE_EVERY_S

    def run_once(self) -> bool:
        """Run one queued job if there is one; False when the queue is empty."""
        with self.c.sessions() as s:
            # Only the leader runs jobs, one at a time: any other `running` job is an orphan
            # (its worker died or was deposed mid-job), so requeue it before claiming.
            recover_orphans(s)
        if not self._run_next(small_only=False):
            return False
        if time.monotonic() - self._last_checkpoint > self.settings.checkpoint_interval_s:
            self.checkpoint()
        return True

    def run_small_jobs(self) -> None:
        """Run queued small uploads for up to INTERLEAVE_S: called by a large upload while
        it parses and between its embedding batches, so small files are not held up by it.
        Never nested: the small jobs themselves do not yield."""
        if self._in_between or self._stop.is_set():
            return
        self._in_between = True
        try:
            deadline = time.monotonic() + INTERLEAVE_S
            while time.monotonic() < deadline and self._run_next(small_only=True):
                pass
        finally:
            self._in_between = False

    def _run_next(self, *, small_only: bool) -> bool:
        """Claim the next job (only a small upload with `small_only`) and run it."""
        with self.c.sessions() as s:
            job = claim_next(
                s,
                fence_holder=self.holder,
                ttl_s=self.settings.lease_ttl_s,
                classes=self.classes,
                small_only=small_only,
            )
            if job is None:
                return False
            job_id, attempts, doc_id = job.id, job.attempts, job.document_id
            if attempts > self.settings.max_attempts:
                self._give_up(s, job_id, doc_id)
                return True
        log.info("job %d (attempt %d)%s", job_id, attempts, " meanwhile" if small_only else "")
        cid = self.processor.run(job_id)
        if cid is not None:
            self._refresh_index(cid)
        return True

    def _refresh_index(self, collection_id: int) -> None:
        """Bring the in-memory index up to the job's commit (checkpointed later)."""
        with self.c.sessions() as s:
            coll = s.get(Collection, collection_id)
            if coll is None:
                self.c.indexes.drop(collection_id)  # the collection was deleted
                self.c.lexical.drop(collection_id)
            elif coll.embedder_dim:
                self.c.indexes.current(s, collection_id, coll.generation, coll.embedder_dim)
                if self.c.indexes.drop(collection_id, keep=coll.generation):
                    self.c.lexical.drop(collection_id, keep=coll.generation)
                    log.info("collection %d now serves generation %d", coll.id, coll.generation)

    def _give_up(self, s: Session, job_id: int, doc_id: int | None) -> None:
        """A job that keeps killing the worker is failed instead of retried forever."""
        job = s.get(Job, job_id)
        assert job is not None
        sealed = job.payload.get("password")
        finish(job, error=f"gave up after {self.settings.max_attempts} attempts")
        doc = s.get(Document, doc_id) if doc_id else None
        if doc is not None and doc.status != DocumentStatus.DELETING.value:
            doc.status = DocumentStatus.FAILED.value
            doc.error_code = ErrorCode.INTERNAL.value
            doc.error = "processing crashed the worker repeatedly; giving up"
        s.commit()
        discard(self.c.blobs, sealed)  # a PDF password's pad goes with the job

    def run_until_idle(self, timeout_s: float = 3600.0) -> None:
        """Wait for the lease, then process jobs until none is queued (`grounded reindex`,
        tests)."""
        deadline = time.monotonic() + timeout_s
        while not self.acquire():
            if time.monotonic() > deadline:
                raise TimeoutError("another worker holds the writer lease")
            time.sleep(self.settings.poll_interval_s)
        self.drain()

    def drain(self, on_job: Callable[[], None] | None = None) -> None:
        """With the lease just acquired: run jobs until none is queued (`on_job` after
        each), renewing the lease meanwhile as run_forever does, then give it back."""
        try:
            with self._renewing():
                while self.run_once():
                    if on_job is not None:
                        on_job()
                    self.acquire()
                self.checkpoint()
        finally:  # after the heartbeat stopped: a late renewal would re-take the lease
            self.release()

    @contextmanager
    def _renewing(self) -> Iterator[None]:
        """Renew the lease in a thread while the block runs: a job longer than the TTL
        keeps it instead of failing its next fenced write."""
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(stop,), daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join(timeout=self.settings.lease_ttl_s)

    def run_forever(self) -> None:
        """The service loop: keep the lease fresh, run jobs, idle-checkpoint. A database blip
        or a full disk is waited out with capped backoff; it never ends the loop."""
        beat = threading.Thread(target=self._heartbeat, args=(self._stop,), daemon=True)
        beat.start()
        backoff = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s)
        try:
            while not self._stop.is_set():
                self._stop.wait(self._turn(backoff))
        finally:
            self._stop.set()
            # A renewal in flight must not re-take the lease after we gave it back.
            beat.join(timeout=self.settings.lease_ttl_s)
            self._release_on_exit()

    def _turn(self, backoff: Backoff) -> float:
        """Take a step; returns how long to wait before the next (backoff after an outage)."""
        try:
            busy = self._step()
        except LeaseLostError:
            log.warning("deposed: another worker took the writer lease")
            self._leader = False
            return 0.0
        except Exception as exc:
            if not is_transient(exc):
                raise
            # Take the lease afresh afterwards: requeue, replay the index tail.
            self._leader = False
            delay = backoff.next_delay()
            log.warning(
                "database or disk unavailable, retrying in %g s: %s", delay, _first_line(exc)
            )
            return delay
        backoff.reset()
        return 0.0 if busy else self.settings.poll_interval_s

    def _step(self) -> bool:
        """One turn of the loop; False when there was nothing to do."""
        if not self.acquire():
            self._leader = False
            return False
        self.tick()
        if self.run_once():
            return True
        self.purge_retired()
        if self._prune_due():
            self.prune_audit()
        self.checkpoint()
        return False

    def _heartbeat(self, stop: threading.Event) -> None:
        """Renew the lease while a long job runs, so nobody takes it over, until `stop`."""
        while not stop.wait(self.settings.lease_ttl_s / 3):
            if not self._leader:
                continue
            try:
                with self.c.sessions() as s:
                    if not try_acquire(s, WRITER, self.holder, self.settings.lease_ttl_s):
                        log.error("lost the writer lease")
                        self._leader = False
            except Exception as exc:  # a dead heartbeat would silently lose the lease
                log.warning("could not renew the writer lease: %s", _first_line(exc))

    def _release_on_exit(self) -> None:
        """Release, unless the database is down: then the lease simply expires."""
        try:
            self.release()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning(
                "could not release the writer lease (%s); it expires in %g s",
                _first_line(exc),
                self.settings.lease_ttl_s,
            )

    def release(self) -> None:
        """Give the lease back so a successor need not wait for it to expire."""
        if not self._leader:
            return
        try:
            self.checkpoint()
        finally:  # a failed checkpoint costs the successor a replay from SQL, not a wait
            self._leader = False
            with self.c.sessions() as s:
                release(s, WRITER, self.holder)


def _first_line(exc: BaseException) -> str:
    """The driver's message without SQLAlchemy's statement and background link."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
