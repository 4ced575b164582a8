"""Wire models of the HTTP API (shapes only; no logic)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, Field

from data.pagination import MAX_ID

T = TypeVar("T")


def _as_utc(value: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
# An id sent in a body; beyond what the database holds is a 422, not a 500.
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class Page(BaseModel, Generic[T]):
    """Every list endpoint answers this: a page of items and the cursor of the next one."""

    items: list[T]
    next_cursor: str | None = None


class CollectionIn(BaseModel):
    """A new collection."""

    name: str = Field(pattern=NAME_PATTERN, description="letters, digits, '_', '-', '.'")
    description: str = Field("", max_length=2000)


class CollectionOut(BaseModel):
    """A collection and the embedding model its vectors come from (null until first upload)."""

    name: str
    description: str
    status: str = "ready"  # or "deleting"
    generation: int = 1  # the index generation searches read; a rebuild makes the next
    embedder_model_id: str | None
    embedder_path: str | None = None  # the local model folder; null = the configured model
    embedder_dim: int | None
    created_at: UtcDatetime


class DocumentOut(BaseModel):
    """A document's state; `error_code` is one of encrypted, no_text, corrupt, timeout, ..."""

    id: int
    collection: str
    filename: str
    source_id: int | None = None  # set when the file comes from a watched folder
    status: str
    error_code: str | None = None
    error: str | None = None
    media_type: str
    size: int
    content_hash: str
    pages: int | None = None
    chunk_count: int = 0
    created_at: UtcDatetime
    updated_at: UtcDatetime
    indexed_at: UtcDatetime | None = None
    progress: dict[str, Any] | None = Field(
        None,
        description="while queued or processing: its job's job_id, job_status, stage "
        "(parsing, chunking, embedding), pages_parsed/pages_total, chunks_total, "
        "chunks_embedded/chunks_to_embed; null otherwise",
    )


class FiltersIn(BaseModel):
    """Narrow retrieval; every filter given must hold (AND)."""

    document_ids: list[DbId] | None = Field(None, max_length=10_000)
    # Its bounds are data.globs.Glob's, so a bad pattern gets the one error body.
    filename: str | None = Field(None, description="glob, e.g. 'hr/**/*.pdf'")
    page_from: int | None = Field(None, ge=1, le=MAX_ID)  # INTEGER columns too
    page_to: int | None = Field(None, ge=1, le=MAX_ID)


class SearchIn(BaseModel):
    """A search over one or more collections."""

    query: str = Field(min_length=1, max_length=10_000)
    collections: list[str] = Field(default_factory=lambda: ["default"], min_length=1)
    top_k: int = Field(5, ge=1, le=100)
    filters: FiltersIn | None = None


class HitOut(BaseModel):
    """A retrieved chunk; `score` is the cosine similarity of query and chunk (−1..1)."""

    chunk_id: int
    document_id: int
    collection: str
    filename: str
    page_start: int | None
    page_end: int | None
    page_label: str | None
    heading: str | None
    text: str
    score: float
    rerank_score: float | None = None  # set when a cross-encoder re-ordered the hits


class SearchOut(BaseModel):
    """Search results, best first."""

    hits: list[HitOut]


class PassagePageOut(BaseModel):
    """A page a passage touches: its displayed size and the passage's boxes on it."""

    page: int
    width: float = Field(description="points, as displayed (crop box, rotation applied)")
    height: float
    boxes: list[tuple[float, float, float, float]] = Field(
        description="[x0, y0, x1, y1] fractions (0..1) of the page, origin top-left, one "
        "per line run of the passage's characters"
    )


class PassageOut(BaseModel):
    """The document text [start:end] a citation points at, with its context and, for a
    PDF, where it is on each page it touches (overlay the boxes on .../pages/{n}/image)."""

    document_id: int
    filename: str
    media_type: str
    page_count: int | None
    page_start: int | None
    page_end: int | None
    page_label: str | None = None
    heading: str | None
    start: int
    end: int
    before: str = Field(description="up to ~600 characters before the passage")
    text: str
    after: str = Field(description="up to ~600 characters after the passage")
    pages: list[PassagePageOut]
    renderable: bool = Field(description="whether .../pages/{n}/image can show its pages")
    unrenderable_reason: str | None = None  # why a PDF's pages cannot be shown


class ErrorOut(BaseModel):
    """Every error response: a stable code and a human message."""

    error: str
    message: str


class AuditEventOut(BaseModel):
    """One audit event: who (key id, its name, its prefix), what, on what, from where, how
    it ended; `payload_hash` is the sha256 of the request body (of the file, for uploads)."""

    id: int
    at: UtcDatetime
    action: str
    outcome: str
    status: int | None
    key_id: int | None
    actor: str | None
    key_prefix: str | None
    collection: str | None
    object_id: str | None
    payload_hash: str | None
    summary: str | None
    client_ip: str | None
