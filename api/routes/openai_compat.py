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
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial
from typing import Any, Literal

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import iterate_in_threadpool

from api.audit import AuditDep, audited
from api.chat_service import ChatService, Prepared, Stored
from api.deps import ContainerDep, ScopeDep, SessionDep
from api.errors import describe, responses
from api.routes.chat import ANSWER_RESPONSES, citation_out, evidence_out, until_disconnected
from api.streaming import answer_stream, close_iterator
from data.audit import Action
from data.errors import InvalidInputError
from data.models import Collection
from data.repositories import collections_query
from llm.answer import Final, Unsupported
from llm.types import ChatMessage, Citation

router = APIRouter(prefix="/v1", tags=["openai"])
DEFAULT_MODEL = "grounded"
RAW_MODEL = "llm"
# The completion limit a request got: its max_tokens, clamped to the server's cap.
MAX_TOKENS_HEADER = "X-Grounded-Max-Tokens"
_ERROR_TYPES = {404: "not_found_error", 413: "invalid_request_error", 422: "invalid_request_error"}


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
    starts = service.chunk_starts(final.citations)
    return {
        "citations": [citation_out(c, starts).model_dump() for c in final.citations],
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


@router.post(
    "/chat/completions",
    response_model=None,
    dependencies=[audited(Action.CHAT_COMPLETIONS)],
    responses=ANSWER_RESPONSES,
)
async def chat_completions(
    body: OAIChatRequest,
    container: ContainerDep,
    scope: ScopeDep,
    request: Request,
    response: Response,
    audit: AuditDep,
) -> dict[str, Any] | StreamingResponse:
    """OpenAI chat completions over a collection, with citations in extra fields."""
    asked = [m for m in body.messages if m.role == "user"]
    audit.about(
        collection=None if body.model == RAW_MODEL else _collection(body.model),
        summary=asked[-1].text() if asked else None,
    )
    service = ChatService(container, scope=scope)
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
            answer_stream(
                service, prepared, cancel, first, events, OpenAIFormat(service, body.model)
            ),
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


class OpenAIFormat:
    """Chat-completion chunks: a role chunk, content deltas (evidence in an extra field),
    a last chunk with usage and citations, then [DONE]; an error is an OpenAI-style
    `{"error": {...}}` chunk, as openai-python raises it."""

    def __init__(self, service: ChatService, model: str) -> None:
        self.service = service
        self.model = model
        self.cid = f"chatcmpl-{int(time.time() * 1000)}"

    def start(self) -> list[str]:
        """The assistant's role."""
        return [_chunk(self.cid, self.model, {"role": "assistant", "content": ""})]

    def evidence(self, quotes: list[Citation], starts: dict[int, int]) -> str:
        """An extra field that OpenAI clients ignore."""
        out = [e.model_dump() for e in evidence_out(quotes, starts)]
        return _chunk(self.cid, self.model, {}, evidence=out)

    def delta(self, text: str) -> str:
        """Verified text as content."""
        return _chunk(self.cid, self.model, {"content": text})

    def done(self, final: Final, stored: Stored) -> list[str]:
        """A refusal's text (as one delta), the stop chunk with the extras, [DONE]."""
        out = [self.delta(final.answer)] if final.refused else []
        extras = _extras(self.service, final, stored.conversation_id, stored.message_id)
        out.append(_chunk(self.cid, self.model, {}, "stop", usage=_usage(final), **extras))
        return [*out, "data: [DONE]\n\n"]

    def error(self, exc: Exception) -> str:
        """The error as OpenAI streams one."""
        status, code, message = describe(exc)
        err = {"message": message, "type": _ERROR_TYPES.get(status, "api_error"), "code": code}
        return f"data: {json.dumps({'error': err}, ensure_ascii=False)}\n\n"


@router.get("/models")
def list_models(session: SessionDep, scope: ScopeDep) -> dict[str, Any]:
    """One model per collection in the scope, plus "grounded" (the default collection, if
    in the scope)."""
    names = [
        c.name for c in session.scalars(collections_query(scope=scope).order_by(Collection.id))
    ]
    default = [DEFAULT_MODEL] if scope.allows(_collection(DEFAULT_MODEL)) else []
    ids = [*default, *names, RAW_MODEL]
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": 0, "owned_by": "grounded"} for i in ids],
    }


@router.post(
    "/embeddings",
    dependencies=[audited(Action.EMBEDDINGS)],
    responses=responses(400, 413, 422),
)
def embeddings(
    body: OAIEmbeddingRequest, container: ContainerDep, audit: AuditDep
) -> dict[str, Any]:
    """Vectors from Grounded's embedding model (unit length, as the index uses them)."""
    texts = [body.input] if isinstance(body.input, str) else body.input
    audit.about(summary=f"{len(texts)} input(s)")
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
