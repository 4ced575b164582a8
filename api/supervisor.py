"""`grounded run`'s worker child: restarted with backoff when it dies, stopped with its parent."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import subprocess
import threading
import time
from types import FrameType

from data.retry import Backoff

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class WorkerSupervisor:
    """Keeps one worker process running: a child that exits is started again after 1 s,
    doubling to `max_s` while it keeps dying (back to 1 s once it has run for `max_s`)."""

    def __init__(
        self,
        argv: list[str],
        *,
        initial_s: float = 1.0,
        max_s: float = 30.0,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.argv = argv
        self.stop_timeout_s = stop_timeout_s
        self._backoff = Backoff(initial_s, max_s)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        # Daemon: an exit that skips stop() must not hang on it; the child's death signal
        # (die_with_parent) then takes the worker down too.
        self._thread = threading.Thread(target=self._loop, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        """Start the first worker and keep watching it."""
        self._thread.start()

    @property
    def pid(self) -> int | None:
        """The current worker's process id (None between restarts)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                # Its own process group: a terminal's Ctrl-C reaches `grounded run` alone,
                # which then stops the worker in order (finish the job, release the lease).
                proc = self._proc = subprocess.Popen(self.argv, process_group=0)
            started = time.monotonic()
            log.info("worker started (pid %d)", proc.pid)
            status = proc.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > self._backoff.max_s:
                self._backoff.reset()  # it ran fine for a while: this is a new failure
            delay = self._backoff.next_delay()
            log.warning(
                "worker (pid %d) exited with status %d; restarting in %g s",
                proc.pid,
                status,
                delay,
            )
            self._stopping.wait(delay)

    def stop(self) -> None:
        """Stop restarting; SIGTERM the worker (it finishes its job) and wait, then SIGKILL."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("worker (pid %d) did not stop in time; killing it", proc.pid)
                proc.kill()
                proc.wait()
        if self._thread.is_alive():
            self._thread.join()


def die_with_parent(parent_pid: int) -> None:
    """In the worker: get SIGTERM from the kernel when `grounded run` dies, even by kill -9
    (Linux; elsewhere a warning). Exits at once if the parent is already gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError):
        log.warning("no prctl here: the worker outlives a killed `grounded run`")
    if os.getppid() != parent_pid:  # it died before the death signal was armed
        raise SystemExit(0)


def exit_on_signals() -> None:
    """SIGTERM and SIGINT raise SystemExit(0), so `finally` blocks run (stopping the worker).

    uvicorn handles both while it serves and raises the signal again once it has shut down;
    Python's default SIGTERM action would then end the process on the spot."""
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)


def ignore_signals() -> None:
    """While shutting down: a second Ctrl-C or SIGTERM must not cut the worker's stop short."""
    signal.signal(signal.SIGTERM, _already_stopping)
    signal.signal(signal.SIGINT, _already_stopping)


def skip_final_gc() -> None:
    """Call last: the interpreter's exit then skips walking the models' object graphs
    (measured: 5 s down to 0.8 s under load), so a stop fits in a container's grace time."""
    gc.freeze()


def _exit(signum: int, _frame: FrameType | None) -> None:
    log.info("%s: shutting down", signal.Signals(signum).name)
    raise SystemExit(0)


def _already_stopping(signum: int, _frame: FrameType | None) -> None:
    log.info("%s: already shutting down", signal.Signals(signum).name)
