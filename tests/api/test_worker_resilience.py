"""A database blip or a full disk pauses the worker; it never ends it (issue 14, item 2)."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, select, text

from api.app import create_app
from api.container import Container, build_container
from api.ingest_cli import process_queue
from api.settings import Settings
from api.worker import Worker
from data.leases import WRITER
from data.models import Document, Lease
from retrieval.embedder import Embedder
from tests.conftest import PG_ADMIN, make_settings

FAST_RETRY = {
    "lease_ttl_s": 5.0,
    "poll_interval_s": 0.05,
    "checkpoint_interval_s": 0.0,
    "retry_initial_s": 0.05,
    "retry_max_s": 0.2,
}


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """The shared test settings with retries short enough for a test."""
    return make_settings(tmp_path / "home", db_url, worker=FAST_RETRY)


@contextmanager
def running_worker(
    container: Container, on_step: Callable[[str], None] | None = None
) -> Iterator[threading.Thread]:
    """Worker.run_forever in a thread, as `grounded worker` runs it; stopped afterwards."""
    worker = Worker(container, holder=f"resilient-{uuid.uuid4().hex[:6]}", on_step=on_step)
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        worker.stop()
        thread.join(timeout=30)


def wait_until(cond: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def status_of(container: Container, doc_id: int) -> str | None:
    with container.sessions() as s:
        return s.scalar(select(Document.status).where(Document.id == doc_id))


def upload(client: TestClient, name: str) -> int:
    r = client.post("/v1/documents", files={"file": (name, f"{name} holds a fact.\n".encode())})
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]


class FailingStatements:
    """Make statements matching `needle` raise the driver's own error, as a real outage
    would: SQLAlchemy wraps it exactly as it wraps one from the server or the file."""

    def __init__(self, engine: Engine, needle: str, error: Callable[[], Exception]) -> None:
        self.engine, self.needle, self.error = engine, needle, error
        self.remaining = 0
        self.raised = 0
        event.listen(engine, "before_cursor_execute", self._hook)

    def arm(self, times: int) -> None:
        self.remaining = times

    def _hook(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.remaining and self.needle in statement:
            self.remaining -= 1
            self.raised += 1
            raise self.error()

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._hook)


def driver_error(container: Container) -> Callable[[], Exception]:
    if container.engine.dialect.name == "sqlite":
        return lambda: sqlite3.OperationalError("database is locked")
    return lambda: psycopg.OperationalError("server closed the connection unexpectedly")


def test_failing_lease_renewals_are_retried_then_the_job_runs(
    client: TestClient, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    """Before the fix, the first OperationalError from `acquire` ended run_forever."""
    caplog.set_level(logging.WARNING, logger="api.worker")
    fail = FailingStatements(container.engine, "UPDATE leases", driver_error(container))
    try:
        fail.arm(4)
        doc_id = upload(client, "a.txt")
        with running_worker(container) as thread:
            wait_until(lambda: status_of(container, doc_id) == "indexed")
            assert thread.is_alive()
            fail.arm(3)  # and again once it has been the leader for a while
            wait_until(lambda: fail.remaining == 0)
            second = upload(client, "b.txt")
            wait_until(lambda: status_of(container, second) == "indexed")
            assert thread.is_alive()
    finally:
        fail.close()
    assert fail.raised == 7
    assert len(retries(caplog)) >= 5  # the heartbeat thread may have met one of the last 3
    delays = [float(m.split("retrying in ")[1].split(" s")[0]) for m in retries(caplog)[:4]]
    assert delays == sorted(delays) and delays[-1] <= 0.2  # backing off, capped


def test_a_failed_renewal_during_a_long_job_does_not_stop_the_heartbeat(
    client: TestClient, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    """Before the fix, one error ended the renewal thread: the lease of a long job ran out
    and the job was taken away from its worker (LeaseLostError, then a second attempt)."""
    caplog.set_level(logging.WARNING, logger="api.worker")
    container.settings.worker.lease_ttl_s = 1.0  # renewed every 0.33 s
    fail = FailingStatements(container.engine, "UPDATE leases", driver_error(container))

    def slow_parse(step: str) -> None:
        if step == "after_parse":
            fail.arm(1)  # the next renewal is the heartbeat's
            time.sleep(3.0)  # a long job: three lease TTLs

    try:
        doc_id = upload(client, "long.txt")
        with running_worker(container, on_step=slow_parse):
            wait_until(lambda: status_of(container, doc_id) in ("indexed", "failed"))
    finally:
        fail.close()
    assert fail.raised == 1
    assert status_of(container, doc_id) == "indexed"
    assert client.get("/v1/jobs").json()["items"][0]["attempts"] == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any("could not renew the writer lease" in m for m in messages)
    assert not any("deposed" in m or "lost the writer lease" in m for m in messages)


def slow_after_parse(step: str) -> None:
    if step == "after_parse":
        time.sleep(2.5)  # a long job: two and a half lease TTLs


@pytest.mark.parametrize("runner", ["run_until_idle", "grounded ingest"])
def test_a_job_longer_than_the_lease_keeps_it_outside_the_service_loop(
    client: TestClient, container: Container, runner: str
) -> None:
    """`grounded ingest` and run_until_idle did not renew the lease: the fenced write after
    a job step longer than the TTL failed with LeaseLostError (issue 15 review)."""
    container.settings.worker.lease_ttl_s = 1.0  # renewed every 0.33 s
    doc_id = upload(client, "long.txt")
    worker = Worker(container, holder="one-shot", on_step=slow_after_parse)
    if runner == "run_until_idle":
        worker.run_until_idle()
    else:
        process_queue(container, [doc_id], worker=worker)
    assert status_of(container, doc_id) == "indexed"
    assert client.get("/v1/jobs").json()["items"][0]["attempts"] == 1
    assert holder(container) is None  # given back at the end, not re-taken by a renewal


def _pg_admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgres_refusing_connections_for_3_s_does_not_stop_the_worker(
    client: TestClient, container: Container, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="api.worker")
    name = db_url.rsplit("/", 1)[1]
    with running_worker(container) as thread:
        wait_until(lambda: holder(container) is not None)
        _pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            _pg_admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
            blocked = time.monotonic()
            wait_until(lambda: len(retries(caplog)) >= 2, timeout=10)
            time.sleep(max(0.0, 3.0 - (time.monotonic() - blocked)))
            assert thread.is_alive()
        finally:
            _pg_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        doc_id = upload(client, "after-the-blip.txt")
        wait_until(lambda: status_of(container, doc_id) == "indexed")
        assert thread.is_alive()
    assert any(
        "not currently accepting connections" in m or "terminat" in m for m in retries(caplog)
    )


def holder(container: Container) -> str | None:
    with container.sessions() as s:
        return s.scalar(select(Lease.holder).where(Lease.name == WRITER))


class SmallDisk:
    """A 16 MB tmpfs that `fill` fills to the last byte and `free` empties again.

    Mounting needs root (CAP_SYS_ADMIN). Elsewhere the disk is simulated: SQLite's own
    `database or disk is full` error is raised for every statement while "full"."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        mount = ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(root)]
        self.real = subprocess.run(mount, capture_output=True).returncode == 0
        self.filler = root / "filler"
        self.failing: FailingStatements | None = None

    def fill(self, engine: Engine) -> None:
        if not self.real:
            self.failing = FailingStatements(
                engine, "", lambda: sqlite3.OperationalError("database or disk is full")
            )
            self.failing.arm(10**9)
            return
        with engine.connect() as conn:  # an empty WAL: the next write needs new blocks
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT)
        try:
            for size in (1 << 20, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)

    def free(self) -> None:
        if self.failing is not None:
            self.failing.close()
        self.filler.unlink(missing_ok=True)

    def close(self) -> None:
        if self.real:
            subprocess.run(["umount", "-l", str(self.root)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "disk")
    yield disk
    disk.close()


def test_sqlite_on_a_full_disk_waits_for_space_then_resumes(
    small_disk: SmallDisk,
    sqlite_template: Path,
    embedder: Embedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before the fix, `database or disk is full` from the lease renewal ended the loop."""
    caplog.set_level(logging.WARNING, logger="api.worker")
    db = small_disk.root / "grounded.db"
    shutil.copy(sqlite_template, db)
    settings = make_settings(small_disk.root / "home", f"sqlite:///{db}", worker=FAST_RETRY)
    container = build_container(settings, embedder=embedder)
    try:
        with TestClient(create_app(container=container)) as client:
            small_disk.fill(container.engine)
            with running_worker(container) as thread:
                wait_until(lambda: len(retries(caplog)) >= 3, timeout=20)
                assert any("disk is full" in m for m in retries(caplog))
                assert thread.is_alive()
                small_disk.free()
                doc_id = upload(client, "after-the-cleanup.txt")
                wait_until(lambda: status_of(container, doc_id) == "indexed")
                assert thread.is_alive()
    finally:
        container.close()
