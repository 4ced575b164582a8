"""Dense search across collections; a hit is returned only if its chunk row is current."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from data.globs import Glob
from data.models import Chunk, Collection, Document
from data.protocols import Embedders, Reranker
from data.types import DocumentStatus
from retrieval.index_store import IndexStore
from retrieval.lexical import LexicalStore


@dataclass(frozen=True)
class Filters:
    """Narrow a search: these documents, filenames matching a glob, pages in a range."""

    document_ids: tuple[int, ...] | None = None
    filename: str | None = None  # e.g. "reports/**/*.pdf"
    page_from: int | None = None
    page_to: int | None = None

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any(
            v is not None for v in (self.document_ids, self.filename, self.page_from, self.page_to)
        )


def allowed_ids(session: Session, coll: Collection, f: Filters) -> np.ndarray:
    """Chunk ids of the collection's current generation that pass the filters."""
    q = (
        select(Chunk.id, Document.filename)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.collection_id == coll.id, Chunk.generation == coll.generation)
    )
    if f.document_ids is not None:
        q = q.where(Chunk.document_id.in_(f.document_ids))
    # A chunk is in a page range if its pages overlap it; chunks without pages are not.
    if f.page_from is not None:
        q = q.where(Chunk.page_end >= f.page_from)
    if f.page_to is not None:
        q = q.where(Chunk.page_start <= f.page_to)
    rows = session.execute(q).all()
    if f.filename is not None:
        pattern = Glob(f.filename)
        keep = {name for name in {r.filename for r in rows} if pattern.match(name)}
        rows = [r for r in rows if r.filename in keep]  # each name matched once, not per chunk
    return np.asarray([r.id for r in rows], dtype=np.int64)


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk. `score` is the cosine similarity of query and chunk, in [-1, 1]."""

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
    rerank_score: float | None = None  # the cross-encoder's, when one reranked the hits


# Chosen with bench/tune_retrieval.py on the calibration halves of COVID-QA and CMRC 2018
# (README, "Retrieval tuning"): BM25 leads, dense breaks its ties and adds what words miss.
DENSE_WEIGHT = 0.5
RRF_K = 10


class Hits(list[Hit]):
    """Hits, best first, and `best_score`: the highest cosine among all the candidates,
    whether or not fusion kept that chunk (refusal is calibrated on the dense top-1)."""

    best_score: float = -1.0
    named: frozenset[int] = frozenset()  # documents the query names (their chunks lead)

    @classmethod
    def of(
        cls, hits: Sequence[Hit], best_score: float, named: frozenset[int] = frozenset()
    ) -> Hits:
        """A list of `hits` carrying `best_score` (and the named documents)."""
        out = cls(hits)
        out.best_score = best_score
        out.named = named
        return out


@dataclass(frozen=True)
class Fusion:
    """Weighted reciprocal-rank fusion: a list's item at rank r adds weight / (k + r)."""

    dense_weight: float = DENSE_WEIGHT  # BM25's weight is 1
    k: int = RRF_K

    @classmethod
    def parse(cls, spec: str) -> Fusion:
        """ "W" or "W:K" (e.g. "0.5:10"), as `grounded eval --modes hybrid@W:K` writes it."""
        weight, _, k = spec.partition(":")
        return cls(float(weight), int(k) if k else RRF_K)

    def scores(self, dense: Sequence[int], lexical: Sequence[int]) -> dict[int, float]:
        """Fused score of every id in either ranking (best first in each)."""
        fused: dict[int, float] = {}
        for weight, ranking in ((self.dense_weight, dense), (1.0, lexical)):
            for rank, c in enumerate(ranking):
                fused[c] = fused.get(c, 0.0) + weight / (self.k + rank + 1)
        return fused


def search(
    session: Session,
    indexes: IndexStore,
    embedders: Embedders,
    query: str,
    collections: Sequence[Collection],
    top_k: int,
    filters: Filters | None = None,
    reranker: Reranker | None = None,
    rerank_top_n: int = 20,
    lexical: LexicalStore | None = None,
    fusion: Fusion | None = None,
) -> Hits:
    """The `top_k` best chunks for `query` over `collections`, best first.

    Dense (FAISS) alone, or fused with BM25 (`lexical`) by reciprocal rank; a reranker then
    re-orders the best `rerank_top_n`. `score` is always the cosine similarity (refusal is
    calibrated on it), also for chunks only BM25 found.
    """
    depth = max(top_k, rerank_top_n) if reranker is not None else top_k
    pool = _retrieve(
        session, indexes, embedders, query, collections, depth, filters, lexical, fusion or Fusion()
    )
    if reranker is None:
        return Hits.of(pool[:top_k], pool.best_score)
    scores = reranker.score(query, [h.text for h in pool])
    ranked = [replace(h, rerank_score=float(x)) for h, x in zip(pool, scores, strict=True)]
    ranked.sort(key=lambda h: (-(h.rerank_score or 0.0), -h.score, h.chunk_id))
    return Hits.of(ranked[:top_k], pool.best_score)


def _retrieve(
    session: Session,
    indexes: IndexStore,
    embedders: Embedders,
    query: str,
    collections: Sequence[Collection],
    top_k: int,
    filters: Filters | None,
    lexical: LexicalStore | None,
    fusion: Fusion,
) -> Hits:
    searchable = [c for c in collections if c.embedder_model_id is not None]
    # Over-fetch: some ids may belong to rows deleted since the index was read.
    fetch = top_k * 2 + 10
    cosine: dict[int, float] = {}
    fused: dict[int, float] = {}
    qvecs: dict[str, np.ndarray] = {}  # collections rebuilt with another model need their own
    for coll in searchable:
        emb = embedders.for_collection(coll.embedder_model_id, coll.embedder_path)
        if emb.model_id not in qvecs:
            qvecs[emb.model_id] = emb.embed_batch([query], "query")
        qvec = qvecs[emb.model_id]
        idx = indexes.current(session, coll.id, coll.generation, emb.dim)
        allowed = allowed_ids(session, coll, filters) if filters and filters.active else None
        scores, ids = idx.search(qvec, fetch, allowed)
        dense = [(int(c), float(x)) for x, c in zip(scores[0], ids[0], strict=True) if c >= 0]
        cosine.update(dense)
        bm25: list[int] = []
        if lexical is not None:
            for c, _ in lexical.search(coll.id, coll.generation, query, fetch, allowed):
                vec = idx.vector(c) if c not in cosine else None
                if vec is not None:  # found by words only: its cosine is still the score
                    cosine[c] = float(vec @ qvec[0])
                if c in cosine:
                    bm25.append(c)
        fused.update(fusion.scores([c for c, _ in dense], bm25))
    hits = _rows(session, searchable, cosine)
    hits.sort(key=lambda h: (-fused[h.chunk_id], -h.score, h.chunk_id))
    return Hits.of(hits[:top_k], max((h.score for h in hits), default=-1.0))


def _rows(
    session: Session, searchable: Sequence[Collection], cosine: dict[int, float]
) -> list[Hit]:
    """Hits for the chunks whose rows are committed and whose document is not being deleted."""
    if not cosine:
        return []
    names = {c.id: c.name for c in searchable}
    rows = session.execute(
        select(Chunk, Document.filename)
        .join(Document, Document.id == Chunk.document_id)
        .where(Chunk.id.in_(list(cosine)), Document.status != DocumentStatus.DELETING.value)
    ).all()
    return [
        Hit(
            chunk_id=chunk.id,
            document_id=chunk.document_id,
            collection=names.get(chunk.collection_id, ""),
            filename=filename,
            page_start=chunk.page_start,
            page_end=chunk.page_end,
            page_label=chunk.page_label,
            heading=chunk.heading,
            text=chunk.text,
            score=cosine[chunk.id],
        )
        for chunk, filename in rows
    ]
