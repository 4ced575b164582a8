"""A bounded, first-come-first-served queue in front of one shared chat model."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from llm.types import ChatMessage, ChatModel, GenerationStats, LLMBusyError

__all__ = ["BoundedChatModel", "BoundedStream"]

log = logging.getLogger(__name__)

_POLL_S = 0.05  # how often a waiting caller looks at its `cancel` event


class _Ticket:
    """One caller's place: waiting until `granted` is set, then holding a run slot."""

    def __init__(self) -> None:
        self.granted = threading.Event()
        self.left = False
        self.since = time.monotonic()


class BoundedChatModel:
    """Wraps a ChatModel: at most `max_concurrent` run, `max_waiting` wait, the rest get busy.

    `stream()` decides admission at call time, so `LLMBusyError` is raised before any
    response is started; the wait for a free slot happens on the first `next()`, and a
    caller still waiting after `max_wait_s` leaves the queue with `LLMBusyError` too, so a
    long queue turns into a prompt 429 instead of a client timeout.
    """

    def __init__(
        self,
        inner: ChatModel,
        *,
        max_concurrent: int = 1,
        max_waiting: int = 8,
        retry_after_s: int = 5,
        max_wait_s: float | None = None,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        if max_waiting < 0:
            raise ValueError("max_waiting must be >= 0")
        if max_wait_s is not None and max_wait_s <= 0:
            raise ValueError("max_wait_s must be > 0 (or None: wait as long as it takes)")
        self.inner = inner
        self.model_id = inner.model_id
        self.context_window = inner.context_window
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.retry_after_s = retry_after_s
        self.max_wait_s = max_wait_s
        self.on_wait = on_wait  # called with each granted caller's seconds in the queue
        self._lock = threading.Lock()
        self._running = 0
        self._queue: deque[_Ticket] = deque()

    @property
    def running(self) -> int:
        """Generations holding a slot now."""
        return self._running

    @property
    def waiting(self) -> int:
        """Callers admitted and waiting for a slot."""
        return len(self._queue)

    @property
    def last_stats(self) -> GenerationStats | None:
        """The inner model's stats of its latest finished run."""
        return getattr(self.inner, "last_stats", None)

    def count_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """Prompt tokens, counted by the inner model (no slot needed)."""
        return self.inner.count_tokens(messages)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        cancel: threading.Event | None = None,
    ) -> BoundedStream:
        """The inner stream once a slot is free; raises `LLMBusyError` now if the queue is full."""
        ticket = self._admit()

        def start() -> Iterator[str]:
            return self.inner.stream(
                messages, max_tokens=max_tokens, temperature=temperature, cancel=cancel
            )

        return BoundedStream(self, ticket, start, cancel)

    def _admit(self) -> _Ticket:
        """A granted ticket, a queued one, or `LLMBusyError` when the queue is full."""
        ticket = _Ticket()
        with self._lock:
            if self._running < self.max_concurrent and not self._queue:
                self._running += 1
                ticket.granted.set()
            elif len(self._queue) < self.max_waiting:
                self._queue.append(ticket)
            else:
                raise LLMBusyError(
                    f"the model is busy: {self._running} generation(s) running and "
                    f"{len(self._queue)} waiting; retry in {self.retry_after_s} s",
                    self.retry_after_s,
                )
        return ticket

    def _wait(self, ticket: _Ticket, cancel: threading.Event | None) -> bool:
        """Block until `ticket` holds a slot (True) or `cancel` is set (False); raise
        `LLMBusyError` once it has waited `max_wait_s`."""
        deadline = None if self.max_wait_s is None else time.monotonic() + self.max_wait_s
        poll = _POLL_S if cancel is not None or deadline is not None else None
        while not ticket.granted.wait(poll):
            if cancel is not None and cancel.is_set():
                return False
            if deadline is not None and time.monotonic() >= deadline:
                with self._lock:
                    if ticket.granted.is_set():  # handed a slot at the last moment
                        return True
                    ticket.left = True
                    self._queue.remove(ticket)
                raise LLMBusyError(
                    f"the model is busy: waited {self.max_wait_s:g} s for a free slot; "
                    f"retry in {self.retry_after_s} s",
                    self.retry_after_s,
                )
        return True

    def _leave(self, ticket: _Ticket) -> None:
        """Give up a place or a slot (idempotent); a freed slot passes to the next in line."""
        with self._lock:
            if ticket.left:
                return
            ticket.left = True
            if not ticket.granted.is_set():
                self._queue.remove(ticket)
            elif self._queue:
                self._queue.popleft().granted.set()  # hand over: `running` is unchanged
            else:
                self._running -= 1


class BoundedStream(Iterator[str]):
    """The inner stream run under a slot; the slot is freed on end, error, close or cancel."""

    def __init__(
        self,
        owner: BoundedChatModel,
        ticket: _Ticket,
        start: Callable[[], Iterator[str]],
        cancel: threading.Event | None,
    ) -> None:
        self._owner = owner
        self._ticket = ticket
        self._start = start
        self._cancel = cancel
        self._inner: Iterator[str] | None = None
        self._done = False

    def __iter__(self) -> BoundedStream:
        return self

    def __next__(self) -> str:
        if self._done:
            raise StopIteration
        try:
            if self._inner is None:
                if not self._owner._wait(self._ticket, self._cancel):
                    raise StopIteration  # cancelled while waiting
                if self._owner.on_wait is not None:
                    self._owner.on_wait(time.monotonic() - self._ticket.since)
                self._inner = self._start()
            return next(self._inner)
        except BaseException:  # StopIteration included: the run is over either way
            self.close()
            raise

    def close(self) -> None:
        """Stop the inner stream (it waits for its generation to end) and free the slot."""
        if self._done:
            return
        self._done = True
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._owner._leave(self._ticket)

    def __del__(self) -> None:
        # Safety net for a stream dropped without being exhausted or closed.
        if not self._done:
            try:
                self.close()
            except Exception:
                log.exception("closing an abandoned LLM stream failed")
