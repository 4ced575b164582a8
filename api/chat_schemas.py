"""Wire models of /v1/chat and /v1/conversations."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas import DbId, FiltersIn, UtcDatetime


class ChatIn(BaseModel):
    """A question, optionally continuing a conversation."""

    message: str = Field(max_length=20_000)
    collections: list[str] | None = None  # default: the conversation's, else ["default"]
    conversation_id: DbId | None = None
    stream: bool = False
    top_k: int | None = Field(None, ge=1, le=50)
    filters: FiltersIn | None = None  # narrows retrieval for this question


class CitationOut(BaseModel):
    """A checked citation; `support` (0..1) is how much of the citing sentence `quote` backs.
    `doc_start`/`doc_end`: the quote's offsets in its document's text, for
    GET /v1/documents/{document_id}/passage (null when the chunk is gone)."""

    index: int
    chunk_id: int | None
    document_id: int | None
    filename: str
    page_start: int | None
    page_end: int | None
    heading: str | None
    quote: str
    supported: bool
    support: float
    doc_start: int | None = None
    doc_end: int | None = None


class EvidenceOut(BaseModel):
    """A quote that covers the question: a sentence span of a retrieved chunk.

    `quote == chunk.text[start:end]`; `doc_start`/`doc_end` are offsets in the document's
    extracted text (null if the chunk was deleted since); `score` is question coverage.
    """

    index: int
    chunk_id: int
    document_id: int
    filename: str
    page_start: int | None
    page_end: int | None
    heading: str | None
    quote: str
    start: int
    end: int
    doc_start: int | None
    doc_end: int | None
    score: float


class UnverifiedOut(BaseModel):
    """A sentence the model wrote that no relevant cited span backs (`mark` mode only)."""

    text: str
    reason: str  # unsupported, number, irrelevant, echo, language, other document, repetition


class ChatOut(BaseModel):
    """The answer; `[n]` markers in it match `citations[].index`.

    `mode`: "generated" (verified model sentences), "extractive" (the evidence quotes, when
    no generated sentence passed) or "refused".
    """

    conversation_id: int
    message_id: int
    answer: str
    refused: bool
    mode: str
    citations: list[CitationOut]
    evidence: list[EvidenceOut] = []
    unverified: list[UnverifiedOut] = []


class MessageOut(BaseModel):
    """A stored turn."""

    id: int
    role: str
    content: str
    refused: bool
    mode: str | None
    model: str | None
    finish_reason: str | None
    latency_ms: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    created_at: UtcDatetime
    citations: list[CitationOut] = []


class ConversationOut(BaseModel):
    """A conversation (with its messages when read one by one)."""

    id: int
    title: str
    collections: list[str]
    created_at: UtcDatetime
    updated_at: UtcDatetime
    messages: list[MessageOut] | None = None
