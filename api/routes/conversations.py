"""/v1/conversations: stored conversations with their messages and citations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from api.chat_schemas import CitationOut, ConversationOut, MessageOut
from api.deps import IdPath, ScopeDep, SessionDep
from api.errors import responses
from api.schemas import Page
from data.models import CitationRecord, Conversation, Message
from data.pagination import DEFAULT_LIMIT, paginate
from data.repositories import conversations_query
from data.repositories import get_conversation as find_conversation

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


def conversation_out(c: Conversation, messages: list[MessageOut] | None = None) -> ConversationOut:
    """Wire form of a conversation."""
    return ConversationOut(
        id=c.id,
        title=c.title,
        collections=list(c.collections),
        created_at=c.created_at,
        updated_at=c.updated_at,
        messages=messages,
    )


def stored_citation(r: CitationRecord) -> CitationOut:
    """Wire form of a stored citation (its own copy of the evidence)."""
    return CitationOut(
        index=r.index,
        chunk_id=r.chunk_id,
        document_id=r.document_id,
        filename=r.filename,
        page_start=r.page_start,
        page_end=r.page_end,
        heading=r.heading,
        quote=r.quote,
        supported=r.supported,
        support=r.support,
        doc_start=r.doc_start,
        doc_end=r.doc_end,
    )


@router.get("", responses=responses(422))
def list_conversations(
    session: SessionDep,
    scope: ScopeDep,
    limit: Annotated[int, Query(ge=1, le=500)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[ConversationOut]:
    """The caller's conversations, oldest first."""
    stmt = conversations_query(scope=scope)
    rows, nxt = paginate(session, stmt, Conversation.id, limit=limit, cursor=cursor)
    return Page[ConversationOut](items=[conversation_out(c) for c in rows], next_cursor=nxt)


@router.get("/{conversation_id}", responses=responses(404, 422))
def get_conversation(
    conversation_id: IdPath, session: SessionDep, scope: ScopeDep
) -> ConversationOut:
    """One of the caller's conversations with every message and its citations."""
    conv = find_conversation(session, conversation_id, scope=scope)
    msgs = session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    ).all()
    cites = session.scalars(
        select(CitationRecord)
        .where(CitationRecord.message_id.in_([m.id for m in msgs]))
        .order_by(CitationRecord.message_id, CitationRecord.index)
    ).all()
    by_msg: dict[int, list[CitationOut]] = {}
    for r in cites:
        by_msg.setdefault(r.message_id, []).append(stored_citation(r))
    out = [
        MessageOut(
            id=m.id,
            role=m.role,
            content=m.content,
            refused=m.refused,
            mode=m.answer_mode,
            model=m.model,
            finish_reason=m.finish_reason,
            latency_ms=m.latency_ms,
            prompt_tokens=m.prompt_tokens,
            completion_tokens=m.completion_tokens,
            created_at=m.created_at,
            citations=by_msg.get(m.id, []),
        )
        for m in msgs
    ]
    return conversation_out(conv, out)
