"""OpenAI-compatible endpoints, so any OpenAI client works unchanged.

`model` names a collection ("grounded" = the default collection), or "llm" for the bare
model without retrieval (so one Grounded can be another's LLM backend). Answers carry their
checked citations in an extra top-level `citations` field (and `grounded` with the refusal
flag and stored ids), on the response and on the last streamed chunk, so they are not lost.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from functools import partial
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import iterate_in_threadpool

from api.chat_service import ChatService, Prepared
from api.deps import ContainerDep, SessionDep
from api.errors import responses
from api.routes.chat import (
    ANSWER_RESPONSES,
    chain_events,
    citation_out,
    close_iterator,
    evidence_out,
    until_disconnected,
)
from data.errors import InvalidInputError
from data.models import Collection
from llm.answer import Delta, Evidence, Final, Unsupported
from llm.types import ChatMessage

router = APIRouter(prefix="/v1", tags=["openai"])
DEFAULT_MODEL = "grounded"
RAW_MODEL = "llm"
# The completion limit a request got: its max_tokens, clamped to the server's cap.
MAX_TOKENS_HEADER = "X-Grounded-Max-Tokens"


class OAIMessage(BaseModel):
    """A chat message; content may be a string or a list of text parts."""

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text."""
        if isinstance(self.content, list):
            return "".join(p.get("text", "") for p in self.content if p.get("type") == "text")
        return self.content or ""


class OAIChatRequest(BaseModel):
    """The subset of the OpenAI chat request Grounded uses (other fields are ignored)."""

    model: str = DEFAULT_MODEL
    messages: list[OAIMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # the newer name of max_tokens

    def token_limit(self, cap: int) -> int:
        """The completion limit: as asked, but never above the server's `cap` (a larger
        request is clamped, not refused; MAX_TOKENS_HEADER tells the client)."""
        asked = self.max_completion_tokens or self.max_tokens
        return min(asked, cap) if asked else cap


class OAIEmbeddingRequest(BaseModel):
    """An embeddings request: one string or a list of strings."""

    input: str | list[str]
    model: str = ""
    encoding_format: Literal["float", "base64"] = "float"  # openai-python asks for base64


def _collection(model: str) -> str:
    return "default" if model in ("", DEFAULT_MODEL) else model.removeprefix("grounded/")


def _prepare(service: ChatService, body: OAIChatRequest) -> Prepared:
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise InvalidInputError("the last message must come from the user")
    history = [ChatMessage(role=m.role, content=m.text()) for m in turns[:-1]]  # type: ignore[arg-type]
    return service.prepare(turns[-1].text(), [_collection(body.model)], None, history=history)


def _extras(
    service: ChatService, final: Final, conversation_id: int, message_id: int
) -> dict[str, Any]:
    mark = service.config.unsupported == Unsupported.MARK
    return {
        "citations": [citation_out(c).model_dump() for c in final.citations],
        "grounded": {
            "refused": final.refused,
            "mode": final.mode,
            "answer": final.answer,
            "conversation_id": conversation_id,
            "message_id": message_id,
            "unverified": [{"text": u.text, "reason": u.reason} for u in final.unverified]
            if mark
            else [],
        },
    }


def _usage(final: Final) -> dict[str, int]:
    p = final.stats.prompt_tokens if final.stats else 0
    c = final.stats.completion_tokens if final.stats else 0
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


@router.post("/chat/completions", response_model=None, responses=ANSWER_RESPONSES)
async def chat_completions(
    body: OAIChatRequest, container: ContainerDep, request: Request, response: Response
) -> dict[str, Any] | StreamingResponse:
    """OpenAI chat completions over a collection, with citations in extra fields."""
    service = ChatService(container)
    limit = body.token_limit(service.config.max_answer_tokens)
    service.config = replace(service.config, max_answer_tokens=limit)
    headers = {MAX_TOKENS_HEADER: str(limit)}
    response.headers.update(headers)
    if body.model == RAW_MODEL:
        return await _raw(service, body, request, headers)
    prepared = await anyio.to_thread.run_sync(_prepare, service, body)
    cancel = threading.Event()
    if body.stream:
        events = service.run(prepared, cancel)
        # errors before any text keep their HTTP status
        first = await anyio.to_thread.run_sync(next, events)
        return StreamingResponse(
            _chunks(service, prepared, body.model, cancel, first, events),
            media_type="text/event-stream",
            headers=headers,
        )
    final = await until_disconnected(request, cancel, partial(service.complete, prepared, cancel))
    stored = await anyio.to_thread.run_sync(service.store, prepared, final)
    return {
        "id": f"chatcmpl-{stored.message_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": final.answer},
                "finish_reason": "length" if final.finish_reason == "length" else "stop",
            }
        ],
        "usage": _usage(final),
        **_extras(service, final, stored.conversation_id, stored.message_id),
    }


async def _raw(
    service: ChatService, body: OAIChatRequest, request: Request, headers: dict[str, str]
) -> dict[str, Any] | StreamingResponse:
    """Plain generation with the server's model: no retrieval, no citations, not stored."""
    messages = [
        ChatMessage(role=m.role, content=m.text())  # type: ignore[arg-type]
        for m in body.messages
        if m.role in ("system", "user", "assistant")
    ]
    cancel = threading.Event()
    max_tokens = service.config.max_answer_tokens  # already clamped to the server's cap
    deltas = service.model.stream(messages, max_tokens=max_tokens, cancel=cancel)
    cid = f"chatcmpl-raw-{int(time.time() * 1000)}"
    if not body.stream:
        text = await until_disconnected(request, cancel, partial("".join, deltas))
        choice = {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": text},
        }
        return {
            "id": cid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": RAW_MODEL,
            "choices": [choice],
        }

    async def chunks() -> AsyncIterator[str]:
        try:
            yield _chunk(cid, RAW_MODEL, {"role": "assistant", "content": ""})
            async for delta in iterate_in_threadpool(deltas):
                yield _chunk(cid, RAW_MODEL, {"content": delta})
            yield _chunk(cid, RAW_MODEL, {}, "stop")
            yield "data: [DONE]\n\n"
        finally:
            cancel.set()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close_iterator, deltas)

    return StreamingResponse(chunks(), media_type="text/event-stream", headers=headers)


def _chunk(
    cid: str, model: str, delta: dict[str, Any], finish: str | None = None, **extra: Any
) -> str:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def _chunks(
    service: ChatService,
    prepared: Prepared,
    model: str,
    cancel: threading.Event,
    first: Evidence | Delta | Final,
    events: Iterator[Evidence | Delta | Final],
) -> AsyncIterator[str]:
    cid = f"chatcmpl-{int(time.time() * 1000)}"
    yield _chunk(cid, model, {"role": "assistant", "content": ""})
    final: Final | None = None
    try:
        async for event in chain_events(first, events):
            if isinstance(event, Evidence):  # an extra field that OpenAI clients ignore
                starts = await anyio.to_thread.run_sync(service.chunk_starts, event.quotes)
                quotes = [e.model_dump() for e in evidence_out(event.quotes, starts)]
                yield _chunk(cid, model, {}, evidence=quotes)
            elif isinstance(event, Delta):
                yield _chunk(cid, model, {"content": event.text})
            else:
                final = event
        assert final is not None
        if final.refused:  # a refusal streams its text as one delta
            yield _chunk(cid, model, {"content": final.answer})
        stored = await anyio.to_thread.run_sync(service.store, prepared, final)
        yield _chunk(
            cid,
            model,
            {},
            "stop",
            usage=_usage(final),
            **_extras(service, final, stored.conversation_id, stored.message_id),
        )
        yield "data: [DONE]\n\n"
    finally:
        if final is None:
            cancel.set()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close_iterator, events)


@router.get("/models")
def list_models(session: SessionDep) -> dict[str, Any]:
    """One model per collection, plus "grounded" (the default collection)."""
    names = session.scalars(select(Collection.name).order_by(Collection.id)).all()
    ids = [DEFAULT_MODEL, *names, RAW_MODEL]
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": 0, "owned_by": "grounded"} for i in ids],
    }


@router.post("/embeddings", responses=responses(400, 413, 422))
def embeddings(body: OAIEmbeddingRequest, container: ContainerDep) -> dict[str, Any]:
    """Vectors from Grounded's embedding model (unit length, as the index uses them)."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or any(not t for t in texts):
        raise InvalidInputError("input must be a non-empty string or list of strings")
    vecs = container.embedder.embed_batch(texts, "passage")
    tokens = sum(container.embedder.count_tokens(t) + 2 for t in texts)  # + [CLS], [SEP]
    return {
        "object": "list",
        "model": container.embedder.model_id,
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(v, body)}
            for i, v in enumerate(vecs)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _encode(vector: Any, body: OAIEmbeddingRequest) -> list[float] | str:
    """A list of floats, or base64 of little-endian float32 as OpenAI sends it."""
    if body.encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return [float(x) for x in vector]
