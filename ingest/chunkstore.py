"""Chunk rows and their index-log entries: every vector change goes through here."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from data.models import Chunk, Document, IndexLog
from data.types import ChunkSpan, PageSpan, ParsedDocument, Section

_BATCH = 500


def text_hash(text: str) -> str:
    """The key under which a chunk's vector is reused."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SwapCounts:
    """What a chunk swap did: rows kept in place, inserted, removed."""

    kept: int
    added: int
    removed: int


def remove_chunks(s: Session, doc: Document, generation: int | None = None) -> int:
    """Delete a document's chunks (of one generation, or all) and log their removal."""
    q = select(Chunk.id, Chunk.generation).where(Chunk.document_id == doc.id)
    if generation is not None:
        q = q.where(Chunk.generation == generation)
    rows = s.execute(q).all()
    if not rows:
        return 0
    cid = doc.collection_id
    s.add_all([IndexLog(collection_id=cid, generation=g, chunk_id=i, op=-1) for i, g in rows])
    ids = [i for i, _ in rows]
    for k in range(0, len(ids), _BATCH):
        s.execute(delete(Chunk).where(Chunk.id.in_(ids[k : k + _BATCH])))
    return len(ids)


def swap_chunks(
    s: Session, doc: Document, generation: int, spans: list[ChunkSpan], vectors: np.ndarray
) -> SwapCounts:
    """Make the document's chunks `spans`, keeping rows (and ids) whose text is unchanged."""
    pool: dict[str, list[int]] = defaultdict(list)
    q = select(Chunk.id, Chunk.text_hash).where(
        Chunk.document_id == doc.id, Chunk.generation == generation
    )
    for cid, h in s.execute(q.order_by(Chunk.ordinal)):
        pool[h].append(cid)
    moved: list[dict[str, Any]] = []
    fresh: list[Chunk] = []
    for i, sp in enumerate(spans):
        h = text_hash(sp.text)
        if pool.get(h):
            # Same text, same vector: only where it sits changed (an edit above it).
            moved.append({"id": pool[h].pop(0), **_placement(sp)})
        else:
            fresh.append(_row(doc, generation, sp, h, vectors[i]))
    gone = [cid for ids in pool.values() for cid in ids]
    if moved:
        s.execute(update(Chunk), moved)
    if gone:
        s.add_all(
            [
                IndexLog(collection_id=doc.collection_id, generation=generation, chunk_id=c, op=-1)
                for c in gone
            ]
        )
        for k in range(0, len(gone), _BATCH):
            s.execute(delete(Chunk).where(Chunk.id.in_(gone[k : k + _BATCH])))
    s.add_all(fresh)
    s.flush()
    s.add_all(
        [
            IndexLog(collection_id=doc.collection_id, generation=generation, chunk_id=r.id, op=1)
            for r in fresh
        ]
    )
    return SwapCounts(kept=len(moved), added=len(fresh), removed=len(gone))


def _placement(sp: ChunkSpan) -> dict[str, Any]:
    return {
        "ordinal": sp.ordinal,
        "start_offset": sp.start,
        "end_offset": sp.end,
        "page_start": sp.page_start,
        "page_end": sp.page_end,
        "page_label": sp.page_label,
        "heading": sp.heading,
        "token_count": sp.token_count,
    }


def _row(doc: Document, generation: int, sp: ChunkSpan, h: str, vector: np.ndarray) -> Chunk:
    return Chunk(
        document_id=doc.id,
        collection_id=doc.collection_id,
        generation=generation,
        text=sp.text,
        text_hash=h,
        vector=np.asarray(vector, dtype=np.float32).tobytes(),
        **_placement(sp),
    )


def layout_of(parsed: ParsedDocument) -> dict[str, Any]:
    """Pages and sections of a parse as JSON, so a rebuild can re-chunk from SQL alone."""
    return {
        "page_count": parsed.page_count,
        "pages": [[p.number, p.start, p.end, p.label] for p in parsed.pages],
        "sections": [[sec.start, list(sec.heading_path)] for sec in parsed.sections],
    }


def parsed_from(text: str, layout: dict[str, Any]) -> ParsedDocument:
    """The parse a document's stored text and layout stand for."""
    return ParsedDocument(
        text=text,
        pages=[PageSpan(number=n, start=a, end=b, label=lbl) for n, a, b, lbl in layout["pages"]],
        sections=[Section(start=a, heading_path=tuple(path)) for a, path in layout["sections"]],
        page_count=layout.get("page_count"),
    )
