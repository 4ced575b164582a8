"""`grounded run` as a container runs it (issue 14, items 2 and 3): a killed worker is
restarted, and SIGTERM or SIGINT sent to the run process alone stops it and its worker
cleanly, giving the writer lease back. Real processes on SQLite; /proc finds the worker."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from api.supervisor import WorkerSupervisor
from retrieval.embedder import Embedder

ROOT = Path(__file__).resolve().parents[2]
# Importing torch and loading the embedder twice (API and worker) takes 10-20 s on an idle
# machine and over a minute on a loaded 2-core one.
START_S = 240.0
STOP_S = 15.0  # SIGTERM to exit; a container runtime's grace time is 10 s by default


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.1)


def _stat(pid: int) -> list[str] | None:
    """The fields after the command name in /proc/PID/stat (state, ppid, ...)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


class Run:
    """`grounded run` on a fresh home and a free port; the LLM is a (never called) remote
    one, so only the embedder loads."""

    def __init__(self, home: Path) -> None:
        self.home = home
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "GROUNDED_HOME": str(home),
            "GROUNDED_WORKER__LEASE_TTL_S": "2",
            "GROUNDED_WORKER__POLL_INTERVAL_S": "0.1",
            "GROUNDED_LLM__BACKEND": "openai",
            "GROUNDED_LLM__BASE_URL": "http://127.0.0.1:9/v1",
            "GROUNDED_AUTH__ENABLED": "false",  # on loopback: these requests send no key
        }
        for name in ("GROUNDED_DATABASE_URL", "GROUNDED_FAILPOINT"):
            env.pop(name, None)
        self.log = home.parent / "run.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "run", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def readyz(self) -> int | None:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=5).status_code
        except httpx.HTTPError:
            return None

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            return self.readyz() == 200

        wait_until(ready, START_S, "/readyz 200")

    def worker(self) -> int:
        found = children(self.proc.pid)
        assert len(found) == 1, found
        return found[0]

    def lease_holder(self) -> str | None:
        with sqlite3.connect(self.home / "grounded.db") as db:
            row = db.execute("SELECT holder FROM leases WHERE name = 'writer'").fetchone()
        return row[0] if row else None

    def stopped_by(self, sig: signal.Signals) -> tuple[int, float]:
        """Send `sig` to the run process only; its exit status and how long it took."""
        start = time.monotonic()
        self.proc.send_signal(sig)
        status = self.proc.wait(timeout=60)
        return status, time.monotonic() - start

    def kill_all(self) -> None:
        for pid in [*children(self.proc.pid), self.proc.pid]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def start_run(tmp_path: Path, embedder: Embedder) -> Iterator[Callable[[], Run]]:
    """Starts `grounded run` (the embedder fixture has filled the shared int8 model cache)."""
    runs: list[Run] = []

    def start() -> Run:
        runs.append(Run(tmp_path / "home"))
        return runs[-1]

    yield start
    for run in runs:
        run.kill_all()


def test_killed_worker_is_restarted_and_sigterm_stops_everything(
    start_run: Callable[[], Run],
) -> None:
    run = start_run()
    run.wait_ready()
    first = run.worker()
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: children(run.proc.pid) not in ([], [first]), 30, "a new worker")
    second = run.worker()
    assert second != first
    run.wait_ready()  # the new worker took over the dead one's lease when it expired
    r = httpx.post(f"{run.url}/v1/documents", files={"file": ("a.txt", b"Kiwis are green.\n")})
    assert r.status_code == 202, r.text
    doc_url = f"{run.url}/v1/documents/{r.json()['id']}"
    wait_until(lambda: httpx.get(doc_url).json()["status"] == "indexed", 60, "indexed")
    assert "restarting in 1 s" in run.log.read_text()  # logged, after the 1 s backoff

    status, took = run.stopped_by(signal.SIGTERM)
    assert status == 0, run.log.read_text()[-3000:]
    assert took < STOP_S
    assert not alive(second)  # no orphan keeps the lease and the old settings
    assert run.lease_holder() is None  # released: a fresh `grounded run` takes over at once


def test_sigint_stops_run_and_its_worker(start_run: Callable[[], Run]) -> None:
    run = start_run()
    run.wait_ready()
    worker = run.worker()
    # The worker is told its parent, so it arms the death signal tested below.
    cmdline = Path(f"/proc/{worker}/cmdline").read_bytes().split(b"\0")
    assert cmdline[-3:-1] == [b"--parent-pid", str(run.proc.pid).encode()]
    status, took = run.stopped_by(signal.SIGINT)
    assert status == 0, run.log.read_text()[-3000:]
    assert took < STOP_S
    assert not alive(worker)
    assert run.lease_holder() is None


# --- the supervisor and the death signal, with light children (no models loaded) -------

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def test_supervisor_restarts_a_dead_child_with_backoff_then_stops_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="api.supervisor")
    sup = WorkerSupervisor(SLEEPER, initial_s=0.2, max_s=0.4, stop_timeout_s=5)
    sup.start()
    try:
        seen: list[int] = []
        for _ in range(3):
            wait_until(lambda: sup.pid is not None and sup.pid not in seen, 10, "a child")
            assert sup.pid is not None
            seen.append(sup.pid)
            os.kill(sup.pid, signal.SIGKILL)
        wait_until(lambda: sup.pid is not None and sup.pid not in seen, 10, "a 4th child")
        last = sup.pid
    finally:
        sup.stop()
    assert last is not None and not alive(last)
    restarts = [r.getMessage() for r in caplog.records if "restarting in" in r.getMessage()]
    assert [m.rsplit("restarting in ", 1)[1] for m in restarts] == ["0.2 s", "0.4 s", "0.4 s"]
    assert all("status -9" in m for m in restarts)
    time.sleep(0.5)
    assert sup.pid is None  # stopped for good: nothing restarted it


ARMED_CHILD = """
import pathlib, signal, sys, time
from api.supervisor import die_with_parent
mark = pathlib.Path(sys.argv[2])
def on_term(*_):
    mark.write_text("SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
die_with_parent(int(sys.argv[1]))
mark.write_text("armed")
time.sleep(120)
"""

PARENT = """
import os, sys, time
from api.supervisor import WorkerSupervisor
sup = WorkerSupervisor([sys.executable, "-c", sys.argv[1], str(os.getpid()), sys.argv[2]])
sup.start()
time.sleep(120)
"""


def test_child_gets_sigterm_when_its_supervisor_is_killed_9(tmp_path: Path) -> None:
    """What keeps the worker from outliving `grounded run` killed with -9 (PDEATHSIG)."""
    mark = tmp_path / "mark"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, ARMED_CHILD, str(mark)], cwd=ROOT, env=dict(os.environ)
    )
    try:
        wait_until(lambda: mark.exists() and mark.read_text() == "armed", 30, "child armed")
        [child] = children(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        wait_until(lambda: not alive(child), 10, "the orphan exits")
        assert mark.read_text() == "SIGTERM"  # asked to stop in order, not killed
    finally:
        for pid in [*children(parent.pid), parent.pid]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_child_whose_parent_is_already_gone_exits_at_once() -> None:
    code = "from api.supervisor import die_with_parent; die_with_parent(-1); print('ran on')"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "ran on" not in out.stdout
