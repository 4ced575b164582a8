"""Run a parser in a child process that is killed when it overruns its time limit.

Threads cannot be killed, and a parser library can hang, crash the interpreter or
eat all memory on a hostile file; a child process contains all three. Children come
from a "forkserver" (the parent has torch and threads loaded, so forking it is
unsafe; spawning a fresh interpreter per document is slow).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import multiprocessing
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from data.types import ParsedDocument
from ingest.errors import CorruptError, ParseError, ParseTimeoutError

logger = logging.getLogger(__name__)

_JOIN_GRACE_S = 5.0
PROGRESS_EVERY_S = 0.5
Progress = Callable[[int, int], None]  # (done, total), e.g. pages parsed
_context: ForkServerContext | None = None
_context_lock = threading.Lock()


def parse_in_subprocess(
    parser: str,
    data_path: str,
    *,
    password: str | None,
    timeout_s: float,
    memory_limit_mb: int | None = None,
    on_progress: Progress | None = None,
) -> ParsedDocument:
    """Parse the file at `data_path` with `parser` ("pkg.module:function") in a child process;
    a parser that takes `progress` reports (pages done, pages) to `on_progress`."""
    result: ParsedDocument = run_in_subprocess(
        parser,
        data_path,
        {"password": password},
        timeout_s=timeout_s,
        memory_limit_mb=memory_limit_mb,
        on_progress=on_progress,
    )
    return result


def run_in_subprocess(
    target: str,
    data_path: str,
    kwargs: dict[str, Any],
    *,
    timeout_s: float,
    memory_limit_mb: int | None = None,
    what: str = "parsing",
    on_progress: Progress | None = None,
) -> Any:
    """`target(bytes of data_path, **kwargs)` ("pkg.module:function") in a child process.

    Its ParseErrors come back as they were raised; a hang past `timeout_s` is a
    ParseTimeoutError ("<what> took longer than ..."), a crash or any other failure a
    CorruptError. The result must be picklable. A target with a `progress` parameter gets
    a `progress(done, total)` whose calls reach `on_progress` in this process (throttled).
    """
    resolve(target)  # fail fast, in the caller, on a mistyped function path
    ctx = _get_context(target)
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child,
        args=(target, data_path, kwargs, memory_limit_mb, what, sender),
        name=f"{what}:{Path(data_path).name}",
        daemon=True,
    )
    exit_wait_s = 0.0  # unless the child has answered, kill it at once
    try:
        with _main_hidden():
            proc.start()
        sender.close()  # else the parent's copy hides the child's death (no EOF)
        # Read before joining: a large result would block the child on a full pipe.
        deadline = time.monotonic() + timeout_s
        while True:
            if not receiver.poll(max(0.0, deadline - time.monotonic())):
                raise ParseTimeoutError(f"{what} took longer than {timeout_s:g} s")
            try:
                status, payload = receiver.recv()
            except EOFError:
                proc.join(_JOIN_GRACE_S)
                raise CorruptError(_death_reason(proc.exitcode, memory_limit_mb)) from None
            if status != "progress":
                break
            if on_progress is not None:
                on_progress(*payload)
        exit_wait_s = _JOIN_GRACE_S
    finally:
        sender.close()
        receiver.close()
        _reap(proc, exit_wait_s)
    if status == "ok":
        return payload
    raise payload


_start_lock = threading.Lock()


@contextmanager
def _main_hidden() -> Iterator[None]:
    """Keep children from re-importing the caller's `__main__` module.

    multiprocessing makes every child import the parent's main script or module first.
    A child only needs its parser; importing e.g. the CLI costs ~0.2 s per document, and
    a script without a main guard would even run again. The main module's spec and file
    are hidden only while `start()` pickles the child's preparation data.
    """
    main = sys.modules["__main__"]
    saved: dict[str, Any] = {
        k: main.__dict__[k] for k in ("__spec__", "__file__") if k in main.__dict__
    }
    with _start_lock:
        main.__dict__["__spec__"] = None
        main.__dict__.pop("__file__", None)
        try:
            yield
        finally:
            main.__dict__.update(saved)


def resolve(parser: str) -> Any:
    """Import and return the function named by "package.module:function"."""
    module_name, sep, func_name = parser.partition(":")
    if not sep or not module_name or not func_name:
        raise ValueError(f"parser must look like 'package.module:function', got {parser!r}")
    func = getattr(importlib.import_module(module_name), func_name, None)
    if not callable(func):
        raise ValueError(f"{parser!r} does not name a function")
    return func


def _get_context(parser: str) -> ForkServerContext:
    """The forkserver context; the first caller's parser module is preloaded in the server."""
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            # Takes effect only before the server starts; preloaded modules cost children nothing.
            ctx.set_forkserver_preload([__name__, parser.partition(":")[0]])
            _context = ctx
        return _context


def _child(
    target: str,
    data_path: str,
    kwargs: dict[str, Any],
    memory_limit_mb: int | None,
    what: str,
    conn: Connection,
) -> None:
    """Child side: run and send ("ok", result) or ("error", ParseError) to the parent."""
    result: tuple[str, object]
    try:
        if memory_limit_mb is not None:
            _limit_memory(memory_limit_mb)
        data = Path(data_path).read_bytes()
        func = resolve(target)
        if "progress" in inspect.signature(func).parameters:
            kwargs = {**kwargs, "progress": _Reporter(conn)}
        result = ("ok", func(data, **kwargs))
    except ParseError as exc:
        result = ("error", exc)
    except MemoryError:
        limit = f" (limit {memory_limit_mb} MB)" if memory_limit_mb else ""
        result = ("error", CorruptError(f"ran out of memory while {what}{limit}"))
    except Exception as exc:  # a parser bug or library failure still must not escape as-is
        result = ("error", CorruptError(f"{what} failed: {type(exc).__name__}: {exc}"))
    try:
        conn.send(result)
    except Exception as exc:  # e.g. an unpicklable result
        conn.send(("error", CorruptError(f"cannot return the result of {what}: {exc}")))
    finally:
        conn.close()


class _Reporter:
    """Child side of progress: sends (done, total) at most every PROGRESS_EVERY_S, and the end."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sent = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - self.sent >= PROGRESS_EVERY_S:
            self.conn.send(("progress", (done, total)))
            self.sent = now


def _limit_memory(memory_limit_mb: int) -> None:
    import resource

    limit = memory_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _death_reason(exitcode: int | None, memory_limit_mb: int | None) -> str:
    """Explain why the child ended without sending a result."""
    if exitcode is None:
        return "the parser process closed its pipe without a result"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (possibly out of memory)" if -exitcode == signal.SIGKILL else ""
        return f"the parser process was killed by {name}{hint}"
    if exitcode != 0 and memory_limit_mb is not None:
        return f"the parser process exited with code {exitcode} (memory limit {memory_limit_mb} MB)"
    return f"the parser process exited with code {exitcode}"


def _reap(proc: BaseProcess, exit_wait_s: float) -> None:
    """Make sure the child is gone (killed after `exit_wait_s`) and its resources released."""
    if proc.pid is None:  # never started
        return
    proc.join(exit_wait_s)
    if proc.is_alive():
        proc.kill()
        proc.join(_JOIN_GRACE_S)
    if proc.exitcode is None:
        logger.error("parser process %s did not exit after SIGKILL", proc.pid)
        return
    proc.close()
