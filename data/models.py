"""SQLAlchemy models: SQL is the source of truth, vectors included."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    deferred,
    mapped_column,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")

DEFAULT_COLLECTION = "default"


def utcnow() -> datetime:
    """Timezone-aware now, for timestamps."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with the constraint naming convention Alembic relies on."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Collection(Base):
    """A knowledge base; records the embedder its vectors were made with."""

    __tablename__ = "collections"
    # AUTOINCREMENT: FAISS files, jobs and chunks name collections by id; never reuse one.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # "ready", or "deleting" once a delete is queued (hidden and read-only from then on).
    status: Mapped[str] = mapped_column(String(16), default="ready", server_default="ready")
    embedder_model_id: Mapped[str | None] = mapped_column(String(300))
    # A local model folder; NULL means the server's configured default model.
    embedder_path: Mapped[str | None] = mapped_column(Text)
    embedder_dim: Mapped[int | None] = mapped_column(Integer)
    embedder_max_tokens: Mapped[int | None] = mapped_column(Integer)
    # Searches read this index generation; a rebuild fills the next one, then swaps.
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Document(Base):
    """One uploaded file, identified by collection + filename."""

    __tablename__ = "documents"
    # AUTOINCREMENT on SQLite: ids are never reused, so a stale id can't name a new row.
    __table_args__ = (
        UniqueConstraint("collection_id", "filename"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), index=True)
    filename: Mapped[str] = mapped_column(String(1024))
    # Set for files found in a watched folder: they change only through that folder.
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"), index=True)
    # The file's mtime when last seen; with `size` it lets a scan skip hashing unchanged files.
    source_mtime_ns: Mapped[int | None] = mapped_column(BigInteger)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    # The content the current chunks were made from (differs while a replacement is queued).
    indexed_hash: Mapped[str | None] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), index=True)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    pages: Mapped[int | None] = mapped_column(Integer)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    # The extracted text that chunk offsets point into; deferred so listings stay light.
    text: Mapped[str | None] = deferred(mapped_column(Text))
    # Where pages and sections start in `text`, so a rebuild re-chunks without re-parsing.
    layout: Mapped[dict[str, Any] | None] = deferred(mapped_column(JSON))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    indexed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Chunk(Base):
    """A span of a document's text with its vector; its id is its FAISS id."""

    __tablename__ = "chunks"
    __table_args__ = (
        Index("ix_chunks_document_ordinal", "document_id", "ordinal"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    collection_id: Mapped[int] = mapped_column(Integer, index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    start_offset: Mapped[int] = mapped_column(Integer)
    end_offset: Mapped[int] = mapped_column(Integer)
    page_start: Mapped[int | None] = mapped_column(Integer)
    page_end: Mapped[int | None] = mapped_column(Integer)
    page_label: Mapped[str | None] = mapped_column(String(64))
    heading: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(Integer)
    text_hash: Mapped[str] = mapped_column(String(64), index=True)
    vector: Mapped[bytes] = deferred(mapped_column(LargeBinary))


class IndexLog(Base):
    """Append-only log of vector adds/removes; a FAISS file is stamped with the last seq."""

    __tablename__ = "index_log"
    __table_args__ = (
        Index("ix_index_log_collection_generation_seq", "collection_id", "generation", "seq"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True)
    collection_id: Mapped[int] = mapped_column(Integer)
    generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    chunk_id: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[int] = mapped_column(SmallInteger)  # +1 add, -1 remove


class Source(Base):
    """A watched folder whose files a collection mirrors, re-synced on a cron schedule."""

    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("collection_id", "path"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), index=True)
    path: Mapped[str] = mapped_column(String(1024))
    # Document names are "<prefix>/<path relative to the folder>".
    prefix: Mapped[str] = mapped_column(String(200))
    schedule: Mapped[str | None] = mapped_column(String(100))  # cron; NULL = on demand only
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    include: Mapped[list[str]] = mapped_column(JSON, default=list)
    exclude: Mapped[list[str]] = mapped_column(JSON, default=list)
    paused: Mapped[bool] = mapped_column(default=False)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_job_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Job(Base):
    """A durable unit of work for the single writer (ingest, delete, reindex, rebuild)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_id", "status", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    collection_id: Mapped[int] = mapped_column(Integer)
    document_id: Mapped[int | None] = mapped_column(Integer, index=True)
    source_id: Mapped[int | None] = mapped_column(Integer, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Counters a client polls (files seen/added/changed..., chunks embedded) and file errors.
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The writer that ran it last; jobs are held under that worker's heartbeated lease.
    worker: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Lease(Base):
    """A named lease (e.g. the single writer), held until `expires_at` (epoch seconds)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)


class Conversation(Base):
    """A chat thread over one or more collections."""

    __tablename__ = "conversations"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The key that started it (only that key sees it); NULL: no key (authentication off).
    key_id: Mapped[int | None] = mapped_column(Integer, index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    collections: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Message(Base):
    """One turn: the user's question or the assistant's answer with its costs."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    # The standalone question retrieval used (follow-ups are rewritten with the history).
    query: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(300))
    refused: Mapped[bool] = mapped_column(default=False)
    # generated, extractive (built from evidence quotes) or refused; NULL before 0004.
    answer_mode: Mapped[str | None] = mapped_column(String(16))
    # Sentences the model wrote that were not shown as verified: [{"text", "reason"}].
    unverified: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    # stop, length, cancelled, refused, repetition, busy, llm_unavailable, error
    finish_reason: Mapped[str | None] = mapped_column(String(16))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    first_token_ms: Mapped[int | None] = mapped_column(Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CitationRecord(Base):
    """A citation with its own copy of the evidence, so it outlives the cited chunk."""

    __tablename__ = "citations"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    index: Mapped[int] = mapped_column(Integer)
    # NULL once the chunk is deleted or replaced; the copies below keep the evidence.
    chunk_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("chunks.id", ondelete="SET NULL"),
        index=True,
    )
    # NULL once the document is deleted: a stale id must never name another file.
    document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL"), index=True
    )
    filename: Mapped[str] = mapped_column(String(1024))
    page_start: Mapped[int | None] = mapped_column(Integer)
    page_end: Mapped[int | None] = mapped_column(Integer)
    heading: Mapped[str | None] = mapped_column(Text)
    quote: Mapped[str] = mapped_column(Text)
    # Offsets of the quote in the cited chunk's text and in its document's text.
    quote_start: Mapped[int] = mapped_column(Integer)
    quote_end: Mapped[int] = mapped_column(Integer)
    doc_start: Mapped[int | None] = mapped_column(Integer)
    doc_end: Mapped[int | None] = mapped_column(Integer)
    support: Mapped[float] = mapped_column(Float)
    supported: Mapped[bool] = mapped_column()


class ApiKey(Base):
    """An API key: only a hash of its secret is stored; `prefix` finds the row."""

    __tablename__ = "api_keys"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))  # data.scope.Role
    # Names of the granted collections; NULL = all (only an admin may have that).
    collections: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """Who did what, when, from where, with what outcome (data/audit.py). Append-only: the
    application never changes or deletes a row, but the retention prune does."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_action_at", "action", "at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    key_id: Mapped[int | None] = mapped_column(Integer)  # no FK: keys' rows may change
    actor: Mapped[str | None] = mapped_column(String(200))  # the key's name, or "cli"
    key_prefix: Mapped[str | None] = mapped_column(String(16))  # also of a refused key
    action: Mapped[str] = mapped_column(String(32))  # data.audit.Action
    collection: Mapped[str | None] = mapped_column(String(300))
    object_id: Mapped[str | None] = mapped_column(String(100))
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(String(300))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # data.audit.Outcome
    status: Mapped[int | None] = mapped_column(SmallInteger)  # the HTTP status; None: CLI


class AuditImmutableError(Exception):
    """Something tried to change or delete an audit event outside the retention prune."""


# The one execution option that lets a bulk DELETE touch audit_events (data.audit.prune).
AUDIT_PRUNE_OPTION = "grounded_audit_prune"


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _refuse_change(_mapper: Any, _conn: Any, target: AuditEvent) -> None:
    raise AuditImmutableError(f"audit event {target.id} is append-only")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_change(state: ORMExecuteState) -> None:
    """ORM bulk UPDATE/DELETE of audit rows: refused, but for the prune's DELETE."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) != AuditEvent.__tablename__:
        return
    if state.is_delete and state.execution_options.get(AUDIT_PRUNE_OPTION):
        return
    raise AuditImmutableError("audit events are append-only (only retention prunes them)")
