"""Shared domain types passed between ingest, retrieval, llm and api (no I/O here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class DocumentStatus(enum.StrEnum):
    """Lifecycle of a document; `deleting` hides it from search at once."""

    QUEUED = "queued"
    PROCESSING = "processing"
    INDEXED = "indexed"
    FAILED = "failed"
    DELETING = "deleting"


class RetrievalMode(enum.StrEnum):
    """How the Retriever ranks: dense (FAISS) alone, or fused with BM25 by reciprocal rank."""

    HYBRID = "hybrid"
    DENSE = "dense"


class ErrorCode(enum.StrEnum):
    """Why parsing a document failed; stable strings clients can switch on."""

    ENCRYPTED = "encrypted"
    NO_TEXT = "no_text"
    CORRUPT = "corrupt"
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    UNSAFE_ARCHIVE = "unsafe_archive"
    EMBEDDER_MISMATCH = "embedder_mismatch"
    INTERNAL = "internal"


@dataclass(frozen=True)
class PageSpan:
    """A physical page (1-based `number`) covering text[start:end]; `label` is the printed label."""

    number: int
    start: int
    end: int
    label: str | None = None


@dataclass(frozen=True)
class Section:
    """From text offset `start` on, the text sits under `heading_path` (outermost first)."""

    start: int
    heading_path: tuple[str, ...]


@dataclass
class ParsedDocument:
    """Extracted text of one document plus where its pages and sections begin."""

    text: str
    pages: list[PageSpan] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    page_count: int | None = None


@dataclass(frozen=True)
class ChunkSpan:
    """One chunk: `text == document_text[start:end]`, sized in embedding-model tokens."""

    ordinal: int
    start: int
    end: int
    text: str
    token_count: int
    page_start: int | None
    page_end: int | None
    page_label: str | None
    heading: str | None


# A rectangle (left, top, right, bottom): in PDF page space (y up) inside ingest/pageview.py,
# as fractions of the displayed page (origin top-left) once returned.
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class PageSpanText:
    """A page's stored text and the part [start:end] of it that is asked for."""

    page: int  # 1-based
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class PageBoxes:
    """A page's displayed size in points and the line boxes of the asked characters on it."""

    page: int
    width: float
    height: float
    boxes: list[Box]
