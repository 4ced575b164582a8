"""/v1/chat: ask a question; JSON, or Server-Sent Events with `"stream": true`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.audit import AuditDep, audited
from api.chat_schemas import ChatIn, ChatOut, CitationOut, EvidenceOut, UnverifiedOut
from api.chat_service import ChatService, Stored
from api.deps import ContainerDep, ScopeDep
from api.errors import describe, responses
from api.routes.search import to_filters
from api.streaming import answer_stream
from data.audit import Action
from llm.answer import Final, Unsupported
from llm.types import Citation

router = APIRouter(prefix="/v1", tags=["chat"])
# What an answering route documents: the SSE stream beside the JSON body (the schema of a
# stream is that of one event, as OpenAPI 3.1 tools read it), and its errors.
_SSE_EVENT = {
    "type": "object",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    "required": ["data"],
}
ANSWER_RESPONSES = {
    200: {"content": {"text/event-stream": {"schema": _SSE_EVENT}}},
    **responses(400, 404, 409, 413, 422, 429, 503),
}
T = TypeVar("T")
_DISCONNECT_POLL_S = 0.2  # how often a non-streaming request checks that its client is there


def _quoted(c: Citation) -> dict[str, object]:
    """The fields a citation and an evidence quote share on the wire."""
    s = c.source
    return {
        "index": c.index,
        "chunk_id": s.chunk_id,
        "document_id": s.document_id,
        "filename": s.filename,
        "page_start": s.page_start,
        "page_end": s.page_end,
        "heading": s.heading,
        "quote": c.quote,
    }


def _doc_span(c: Citation, starts: dict[int, int]) -> dict[str, int | None]:
    """The quote's offsets in its document, where its chunk still exists."""
    base = starts.get(c.source.chunk_id)
    if base is None:
        return {"doc_start": None, "doc_end": None}
    return {"doc_start": base + c.quote_start, "doc_end": base + c.quote_end}


def citation_out(c: Citation, starts: dict[int, int] | None = None) -> CitationOut:
    """Wire form of a fresh citation; `starts` maps chunk ids to their document offsets."""
    return CitationOut(
        **_quoted(c),
        **_doc_span(c, starts or {}),
        supported=c.supported,
        support=round(c.support, 4),
    )


def evidence_out(quotes: list[Citation], starts: dict[int, int]) -> list[EvidenceOut]:
    """Wire form of evidence quotes; `starts` maps chunk ids to their document offsets."""
    return [
        EvidenceOut(
            **_quoted(c),
            **_doc_span(c, starts),
            start=c.quote_start,
            end=c.quote_end,
            score=round(c.support, 4),
        )
        for c in quotes
    ]


def chat_out(service: ChatService, final: Final, conversation_id: int, message_id: int) -> ChatOut:
    """The response body (also the payload of the final SSE event)."""
    mark = service.config.unsupported == Unsupported.MARK
    starts = service.chunk_starts([*final.citations, *final.evidence])
    return ChatOut(
        conversation_id=conversation_id,
        message_id=message_id,
        answer=final.answer,
        refused=final.refused,
        mode=final.mode,
        citations=[citation_out(c, starts) for c in final.citations],
        evidence=evidence_out(final.evidence, starts),
        unverified=[UnverifiedOut(text=u.text, reason=u.reason) for u in final.unverified]
        if mark
        else [],
    )


@router.post(
    "/chat",
    response_model=ChatOut,
    dependencies=[audited(Action.CHAT)],
    responses=ANSWER_RESPONSES,
)
async def chat(
    body: ChatIn, container: ContainerDep, scope: ScopeDep, request: Request, audit: AuditDep
) -> ChatOut | StreamingResponse:
    """Answer from the collections with checked citations, or refuse when nothing fits."""
    audit.about(
        collection=",".join(body.collections) if body.collections else None,
        object_id=body.conversation_id,
        summary=body.message,
    )
    service = ChatService(container, scope=scope)
    prepared = await anyio.to_thread.run_sync(
        partial(
            service.prepare,
            body.message,
            body.collections,
            body.conversation_id,
            body.top_k,
            filters=to_filters(body.filters),
        )
    )
    cancel = threading.Event()
    if body.stream:
        events = service.run(prepared, cancel)
        # The first event is pulled here so that busy (429), LLM-down (503) and other errors
        # before any text still get a proper HTTP status instead of an in-stream event.
        first = await anyio.to_thread.run_sync(next, events)
        return StreamingResponse(
            answer_stream(service, prepared, cancel, first, events, SSEFormat(service)),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )
    final = await until_disconnected(request, cancel, partial(service.complete, prepared, cancel))
    stored = await anyio.to_thread.run_sync(service.store, prepared, final)
    return await anyio.to_thread.run_sync(
        chat_out, service, final, stored.conversation_id, stored.message_id
    )


async def until_disconnected(request: Request, cancel: threading.Event, work: Callable[[], T]) -> T:
    """Run blocking `work` in a thread; if the client goes away meanwhile, set `cancel`.

    Without this a non-streaming answer is generated to the end for nobody, holding the
    model slot (minutes for a long one) while other requests get 429. `work` must honour
    `cancel` (the answer flow and the chat models do).
    """

    async def watch() -> None:
        while not await request.is_disconnected():
            await anyio.sleep(_DISCONNECT_POLL_S)
        cancel.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        # Errors come back as values: raised inside the task group they would be wrapped
        # in an ExceptionGroup and miss their HTTP mapping (429, 503, ...).
        value, error = await anyio.to_thread.run_sync(_capture, work)
        tg.cancel_scope.cancel()
    if error is not None:
        raise error
    return value  # type: ignore[return-value]


def _capture(work: Callable[[], T]) -> tuple[T | None, Exception | None]:
    try:
        return work(), None
    except Exception as exc:
        return None, exc


def sse(event: str, data: object) -> str:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class SSEFormat:
    """/v1/chat's events: `evidence`, `delta`s, then `done` with ids and citations (or
    `error` with the {"error", "message"} of an error response)."""

    def __init__(self, service: ChatService) -> None:
        self.service = service

    def start(self) -> list[str]:
        """Nothing before the first event."""
        return []

    def evidence(self, quotes: list[Citation], starts: dict[int, int]) -> str:
        """The best quotes, before the model writes."""
        return sse("evidence", {"quotes": [e.model_dump() for e in evidence_out(quotes, starts)]})

    def delta(self, text: str) -> str:
        """Verified text."""
        return sse("delta", {"text": text})

    def done(self, final: Final, stored: Stored) -> list[str]:
        """The whole response body."""
        body = chat_out(self.service, final, stored.conversation_id, stored.message_id)
        return [sse("done", body.model_dump())]

    def error(self, exc: Exception) -> str:
        """The error as an error response would carry it."""
        _status, code, message = describe(exc)
        return sse("error", {"error": code, "message": message})
