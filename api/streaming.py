"""The one streaming loop behind /v1/chat and /v1/chat/completions; only the wire differs.

Both stream evidence, then verified text, then the stored turn; an error after the stream
began becomes an error event, and a turn that did not finish (error or disconnect) is still
stored, with finish_reason "error" or "cancelled", so the conversation stays consistent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import anyio
from starlette.concurrency import iterate_in_threadpool

from api.chat_service import ChatService, Prepared, Stored
from llm.answer import Delta, Evidence, Final
from llm.types import Citation

log = logging.getLogger(__name__)
Event = Evidence | Delta | Final


class StreamFormat(Protocol):
    """How one endpoint writes the stream's parts."""

    def start(self) -> list[str]:
        """What goes out before the first event."""
        ...

    def evidence(self, quotes: list[Citation], starts: dict[int, int]) -> str:
        """The evidence quotes (`starts`: chunk id → document offset)."""
        ...

    def delta(self, text: str) -> str:
        """A piece of verified answer text."""
        ...

    def done(self, final: Final, stored: Stored) -> list[str]:
        """The end of a finished, stored answer (runs in a worker thread: it may query)."""
        ...

    def error(self, exc: Exception) -> str:
        """An error met after the stream began."""
        ...


async def answer_stream(
    service: ChatService,
    prepared: Prepared,
    cancel: threading.Event,
    first: Event,
    events: Iterator[Event],
    fmt: StreamFormat,
) -> AsyncIterator[str]:
    """Write the answer flow's events in `fmt`; store the turn however the stream ends."""
    parts: list[str] = []
    final: Final | None = None
    reason = "cancelled"
    try:
        for chunk in fmt.start():
            yield chunk
        async for event in chain_events(first, events):
            if isinstance(event, Evidence):
                starts = await anyio.to_thread.run_sync(service.chunk_starts, event.quotes)
                yield fmt.evidence(event.quotes, starts)
            elif isinstance(event, Delta):
                parts.append(event.text)
                yield fmt.delta(event.text)
            else:
                final = event
        assert final is not None
        stored = await anyio.to_thread.run_sync(service.store, prepared, final)
        for chunk in await anyio.to_thread.run_sync(fmt.done, final, stored):
            yield chunk
    except Exception as exc:  # the stream has started: errors can only travel as events
        reason = "error"
        log.warning("answer stream failed: %r", exc, exc_info=exc)
        yield fmt.error(exc)
    finally:
        if final is None:
            await _store_unfinished(service, prepared, cancel, events, "".join(parts), reason)


async def _store_unfinished(
    service: ChatService,
    prepared: Prepared,
    cancel: threading.Event,
    events: Iterator[Event],
    text: str,
    reason: str,
) -> None:
    cancel.set()
    with anyio.CancelScope(shield=True):
        # Closing the suspended flow frees its model slot now, not at GC time.
        await anyio.to_thread.run_sync(close_iterator, events)
        partial = Final(answer=text, query=prepared.question, refused=False, finish_reason=reason)
        await anyio.to_thread.run_sync(service.store, prepared, partial)


def close_iterator(it: Iterator[object]) -> None:
    """Close a generator-like iterator (runs its cleanup: frees the model slot)."""
    close = getattr(it, "close", None)
    if close is not None:
        close()


async def chain_events(first: Event, rest: Iterator[Event]) -> AsyncIterator[Event]:
    """The event already pulled, then the rest, each `next()` run off the event loop."""
    yield first
    async for event in iterate_in_threadpool(rest):
        yield event
