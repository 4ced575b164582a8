"""The chat use case: resolve the request, run the answer flow, store the turn in SQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.container import Container
from data.errors import InvalidInputError
from data.models import Chunk, CitationRecord, Conversation, Document, Message
from data.repositories import get_conversation
from data.scope import Scope
from llm.answer import AnswerConfig, Delta, Evidence, Final, Retrieved, Unsupported, answer
from llm.citations import DEFAULT_SUPPORT_THRESHOLD
from llm.refusal import RefusalPolicy
from llm.types import ChatMessage, ChatModel, Citation, LLMUnavailableError, Source
from retrieval.search import Filters


@dataclass(frozen=True)
class Prepared:
    """A validated chat request: where to look and what was said before."""

    question: str
    conversation_id: int | None
    collection_ids: list[int]
    collection_names: list[str]
    history: list[ChatMessage]
    top_k: int
    filters: Filters | None = None


@dataclass(frozen=True)
class Stored:
    """Ids of a stored turn."""

    conversation_id: int
    message_id: int


class ChatService:
    """Answers questions for the API, the OpenAI-compatible endpoints and the CLI."""

    def __init__(self, container: Container, *, scope: Scope) -> None:
        self.c = container
        self.scope = scope  # every collection lookup and search stays within it
        cfg, ans = container.settings.llm, container.settings.answer
        policy = RefusalPolicy()
        self.config = AnswerConfig(
            refusal=(
                policy.with_threshold(cfg.refusal_threshold)
                if cfg.refusal_threshold >= 0
                else policy
            ),
            support_threshold=(
                cfg.support_threshold if cfg.support_threshold >= 0 else DEFAULT_SUPPORT_THRESHOLD
            ),
            relevance_threshold=ans.relevance_threshold,
            unsupported=Unsupported(ans.unsupported),
            generate=ans.generate,
            max_answer_tokens=cfg.max_answer_tokens,
        )

    @property
    def model(self) -> ChatModel:
        """The shared chat model; a missing one is a 503."""
        if self.c.chat_model is None:
            raise LLMUnavailableError("no LLM is configured for this server")
        return self.c.chat_model

    def prepare(
        self,
        question: str,
        collections: list[str] | None,
        conversation_id: int | None,
        top_k: int | None = None,
        history: list[ChatMessage] | None = None,
        filters: Filters | None = None,
    ) -> Prepared:
        """Validate: non-empty question (422), known collections and conversation (404)."""
        question = question.strip()
        if not question:
            raise InvalidInputError("the message is empty")
        with self.c.sessions() as s:
            past: list[ChatMessage] = list(history or [])
            if conversation_id is not None:
                conv = get_conversation(s, conversation_id, scope=self.scope)
                collections = collections or list(conv.collections)
                past = self._history(conversation_id)
            colls = self.c.retriever.collections(s, collections, scope=self.scope)
        return Prepared(
            question=question,
            conversation_id=conversation_id,
            collection_ids=[c.id for c in colls],
            collection_names=[c.name for c in colls],
            history=past,
            top_k=top_k or self.c.settings.llm.top_k,
            filters=filters,
        )

    def _history(self, conversation_id: int) -> list[ChatMessage]:
        turns = self.c.settings.llm.history_turns
        with self.c.sessions() as s:
            rows = s.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.id.desc())
                .limit(turns)
            ).all()
        return [ChatMessage(role=m.role, content=m.content) for m in reversed(rows)]  # type: ignore[arg-type]

    def retrieve(self, prepared: Prepared, query: str, *, prefer_named: bool = True) -> Retrieved:
        """Numbered sources for `query`, best first, the best cosine seen, and the documents
        the question names (whose chunks then come first; `prefer_named=False` for benches)."""
        with self.c.sessions() as s:
            hits = self.c.retriever.search(
                s,
                query,
                scope=self.scope,
                collections=prepared.collection_names,
                top_k=prepared.top_k,
                filters=prepared.filters,
                prefer_named=prefer_named,
            )
        sources = [
            Source(
                index=i + 1,
                chunk_id=h.chunk_id,
                document_id=h.document_id,
                filename=h.filename,
                page_start=h.page_start,
                page_end=h.page_end,
                heading=h.heading,
                text=h.text,
                score=h.score,
            )
            for i, h in enumerate(hits)
        ]
        return Retrieved(sources, hits.best_score, hits.named)

    def run(
        self, prepared: Prepared, cancel: threading.Event | None = None
    ) -> Iterator[Evidence | Delta | Final]:
        """The answer flow's events for a prepared request (a finished answer is counted)."""
        events = answer(
            prepared.question,
            prepared.history,
            lambda q: self.retrieve(prepared, q),
            self.model if self.config.generate else self.c.chat_model,
            self.config,
            cancel,
        )
        return self._counted(events)

    def _counted(
        self, events: Iterator[Evidence | Delta | Final]
    ) -> Iterator[Evidence | Delta | Final]:
        try:
            for event in events:
                if isinstance(event, Final):
                    self.c.metrics.observe_answer(event)
                yield event
        finally:
            close = getattr(events, "close", None)
            if close is not None:  # a client gone: stop the generation now
                close()

    def complete(self, prepared: Prepared, cancel: threading.Event | None = None) -> Final:
        """Run to the end (no streaming), or until `cancel` is set."""
        final: Final | None = None
        for event in self.run(prepared, cancel):
            if isinstance(event, Final):
                final = event
        assert final is not None
        return final

    def chunk_starts(self, quotes: list[Citation]) -> dict[int, int]:
        """Document offsets of the quoted chunks that still exist."""
        ids = [c.source.chunk_id for c in quotes]
        if not ids:
            return {}
        with self.c.sessions() as s:
            q = select(Chunk.id, Chunk.start_offset).where(Chunk.id.in_(ids))
            return {cid: start for cid, start in s.execute(q)}

    def store(self, prepared: Prepared, final: Final) -> Stored:
        """Persist the question and the answer with copies of its evidence, in one commit."""
        with self.c.sessions() as s:
            conv = (
                s.get(Conversation, prepared.conversation_id)
                if prepared.conversation_id is not None
                else None
            )
            if conv is None:
                conv = Conversation(
                    title=prepared.question[:200],
                    collections=prepared.collection_names,
                    key_id=self.scope.key_id,
                )
                s.add(conv)
                s.flush()
            s.add(Message(conversation_id=conv.id, role="user", content=prepared.question))
            msg = _assistant_message(conv.id, final)
            s.add(msg)
            s.flush()
            _store_citations(s, msg.id, final)
            conv.updated_at = msg.created_at
            s.commit()
            return Stored(conversation_id=conv.id, message_id=msg.id)


def _assistant_message(conversation_id: int, final: Final) -> Message:
    stats = final.stats
    return Message(
        conversation_id=conversation_id,
        role="assistant",
        content=final.answer,
        query=final.query,
        model=final.model_id,
        refused=final.refused,
        answer_mode=final.mode,
        unverified=[{"text": u.text, "reason": u.reason} for u in final.unverified] or None,
        finish_reason="refused" if final.refused else final.finish_reason,
        latency_ms=round(final.latency_s * 1000),
        first_token_ms=round(stats.first_token_s * 1000) if stats else None,
        prompt_tokens=stats.prompt_tokens if stats else None,
        completion_tokens=stats.completion_tokens if stats else None,
    )


def _store_citations(s: Session, message_id: int, final: Final) -> None:
    # A chunk or document deleted since retrieval gets a NULL id; the copied evidence
    # stays. The rows are key-share locked (documents first, the order the writer locks
    # in) so a delete can't commit between this check and the insert.
    doc_ids = [c.source.document_id for c in final.citations]
    dq = select(Document.id).where(Document.id.in_(doc_ids)).with_for_update(key_share=True)
    docs = set(s.scalars(dq)) if doc_ids else set()
    ids = [c.source.chunk_id for c in final.citations]
    q = select(Chunk.id, Chunk.start_offset).where(Chunk.id.in_(ids))
    q = q.with_for_update(key_share=True)
    starts = {cid: start for cid, start in s.execute(q)} if ids else {}
    for c in final.citations:
        base = starts.get(c.source.chunk_id)
        s.add(
            CitationRecord(
                message_id=message_id,
                index=c.index,
                chunk_id=c.source.chunk_id if base is not None else None,
                document_id=c.source.document_id if c.source.document_id in docs else None,
                filename=c.source.filename,
                page_start=c.source.page_start,
                page_end=c.source.page_end,
                heading=c.source.heading,
                quote=c.quote,
                quote_start=c.quote_start,
                quote_end=c.quote_end,
                doc_start=base + c.quote_start if base is not None else None,
                doc_end=base + c.quote_end if base is not None else None,
                support=c.support,
                supported=c.supported,
            )
        )
