"""One document through the pipeline: parse (sandboxed) → chunk → embed → one SQL commit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from data.errors import EmbedderMismatchError
from data.jobs import finish
from data.models import Chunk, Collection, Document, Job, utcnow
from data.protocols import Embedder
from data.types import ChunkSpan, DocumentStatus, ErrorCode, ParsedDocument
from ingest.blobs import release_blob
from ingest.chunking import TokenChunker
from ingest.chunkstore import layout_of, swap_chunks, text_hash
from ingest.errors import NoTextError, ParseError, TooLargeError
from ingest.parsers import PARSERS
from ingest.progress import JobProgress
from ingest.sandbox import parse_in_subprocess
from ingest.sealed import unseal
from ingest.writer import Writer

log = logging.getLogger(__name__)
# Texts per embedder call: between calls the indexer checks its document is still wanted.
EMBED_STEP = 256


class _Superseded(Exception):
    """The document was deleted or replaced while it was being processed."""


@dataclass(frozen=True)
class Outcome:
    """How indexing one document ended."""

    status: str  # indexed, failed, superseded
    embedded: int = 0
    reused: int = 0
    code: str = ""
    message: str = ""


class DocumentIndexer:
    """Indexes one document version; every SQL write is fenced by the writer lease."""

    def __init__(self, writer: Writer) -> None:
        self.w = writer
        self._chunkers: dict[str, TokenChunker] = {}

    def chunker(self, embedder: Embedder) -> TokenChunker:
        """A chunker sized for `embedder` (one per model)."""
        if embedder.model_id not in self._chunkers:
            cfg = self.w.config
            tokens = min(cfg.chunk_tokens or embedder.max_tokens, embedder.max_tokens)
            self._chunkers[embedder.model_id] = TokenChunker(
                embedder.tokenizer,
                max_tokens=tokens,
                overlap_tokens=min(cfg.chunk_overlap_tokens, tokens // 4),
            )
        return self._chunkers[embedder.model_id]

    def index(
        self,
        doc_id: int,
        payload: dict[str, object],
        *,
        job_id: int | None = None,
        mtime_ns: int | None = None,
        between: Callable[[], None] | None = None,
    ) -> Outcome:
        """Index the version `payload` names; `job_id` is finished in the same commit.

        `between()` is called while the parse runs and between embedding batches: the
        worker runs small jobs there, so a huge document does not hold them up."""
        with self.w.fenced() as s:
            doc = s.get(Document, doc_id)
            coll = s.get(Collection, doc.collection_id) if doc is not None else None
            if doc is None or coll is None or _superseded(doc, coll, payload):
                _finish_in(s, job_id)
                s.commit()
                return Outcome("superseded")
            try:
                embedder = self.w.embedders.for_collection(
                    coll.embedder_model_id, coll.embedder_path
                )
            except EmbedderMismatchError as exc:
                s.rollback()
                self._fail(doc_id, job_id, ErrorCode.EMBEDDER_MISMATCH, exc.message, mtime_ns)
                return Outcome("failed", code=ErrorCode.EMBEDDER_MISMATCH.value)
            doc.status = DocumentStatus.PROCESSING.value
            s.commit()
        wanted = partial(self._wanted, doc_id, payload)
        report = JobProgress(self.w, job_id)
        try:
            parse = partial(self.parse, str(payload["format"]), payload, report.pages)
            parsed = report.parse(parse, between)
            self.w.on_step("after_parse")
            self._check_size(parsed)
            if not wanted():
                raise _Superseded
            report.update(stage="chunking")
            report.save(force=True)
            spans = self.chunker(embedder).split(parsed)
            if not spans:
                raise NoTextError("the document contains no text")
            report.update(stage="embedding", chunks_total=len(spans))
            on_batch = partial(report.batch, between)
            vectors, embedded = self.vectors(embedder, spans, wanted=wanted, on_batch=on_batch)
            self.w.on_step("after_embed")
        except ParseError as exc:
            self._fail(doc_id, job_id, exc.code, exc.message, mtime_ns)
            return Outcome("failed", code=exc.code.value, message=exc.message)
        except _Superseded:
            # Stop at once: a deleted document's remaining work would only be thrown away.
            log.info("document %d was deleted or replaced while processing; stopped", doc_id)
            with self.w.fenced() as s:
                _finish_in(s, job_id)
                s.commit()
            return Outcome("superseded")
        return self._commit(doc_id, job_id, payload, parsed, spans, vectors, embedded, mtime_ns)

    def parse(
        self,
        fmt: str,
        payload: dict[str, object],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ParsedDocument:
        """Parse a stored original in the sandbox; `on_progress(pages done, pages)`."""
        path = self.w.blobs.path_for(str(payload["content_hash"]))
        parsers = self.w.config.parsers or PARSERS
        return parse_in_subprocess(
            parsers[fmt],
            str(path),
            password=unseal(self.w.blobs, payload.get("password")),
            timeout_s=self.w.config.parse_timeout_s,
            memory_limit_mb=self.w.config.parse_memory_mb,
            on_progress=on_progress,
        )

    def vectors(
        self,
        embedder: Embedder,
        spans: list[ChunkSpan],
        *,
        wanted: Callable[[], bool] | None = None,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> tuple[np.ndarray, int]:
        """Vectors for `spans`: each distinct text is embedded once, stored vectors of
        identical text from this model are reused; `wanted()` is asked between batches,
        `on_batch(texts embedded, texts to embed)` told before the first and after each."""
        hashes = [text_hash(sp.text) for sp in spans]
        known = self._known_vectors(embedder.model_id, sorted(set(hashes)))
        todo: dict[str, str] = {}  # first text of each hash nothing stored covers
        for h, sp in zip(hashes, spans, strict=True):
            if h not in known:
                todo.setdefault(h, sp.text)
        keys = list(todo)
        if on_batch is not None:
            on_batch(0, len(keys))
        for k in range(0, len(keys), EMBED_STEP):
            if k and wanted is not None and not wanted():
                raise _Superseded
            batch = keys[k : k + EMBED_STEP]
            found = embedder.embed_batch([todo[h] for h in batch], "passage")
            known.update(zip(batch, np.asarray(found, dtype=np.float32), strict=True))
            self.w.on_step("embed_batch")
            if on_batch is not None:
                on_batch(k + len(batch), len(keys))
        out = np.zeros((len(spans), embedder.dim), dtype=np.float32)
        for i, h in enumerate(hashes):
            out[i] = known[h]
        log.debug("embedded %d distinct texts for %d chunks", len(todo), len(spans))
        return out, len(todo)

    def _check_size(self, parsed: ParsedDocument) -> None:
        limit = self.w.config.max_chars
        if limit and len(parsed.text) > limit:
            raise TooLargeError(
                f"the extracted text has {len(parsed.text):,} characters; "
                f"the limit is {limit:,} (ingest.max_chars)"
            )

    def _wanted(self, doc_id: int, payload: dict[str, object]) -> bool:
        """False once the document was deleted or replaced (or its collection deleted)."""
        with self.w.sessions() as s:
            doc = s.get(Document, doc_id)
            coll = s.get(Collection, doc.collection_id) if doc is not None else None
            return not (doc is None or coll is None or _superseded(doc, coll, payload))

    def _known_vectors(self, model_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self.w.sessions() as s:
            for i in range(0, len(hashes), 500):
                q = (
                    select(Chunk.text_hash, Chunk.vector)
                    .join(Collection, Collection.id == Chunk.collection_id)
                    .where(
                        Chunk.text_hash.in_(hashes[i : i + 500]),
                        Chunk.generation == Collection.generation,
                        Collection.embedder_model_id == model_id,
                    )
                )
                for h, vec in s.execute(q):
                    found[h] = np.frombuffer(vec, dtype=np.float32)
        return found

    def _commit(
        self,
        doc_id: int,
        job_id: int | None,
        payload: dict[str, object],
        parsed: ParsedDocument,
        spans: list[ChunkSpan],
        vectors: np.ndarray,
        embedded: int,
        mtime_ns: int | None,
    ) -> Outcome:
        """Swap the document's chunks in one transaction: readers see old or new, never both."""
        # The fence's UPDATE comes first so the transaction holds the write lock from here on.
        with self.w.fenced() as s:
            doc = s.get(Document, doc_id, with_for_update=True)
            coll = s.get(Collection, doc.collection_id) if doc is not None else None
            if doc is None or coll is None or _superseded(doc, coll, payload):
                _finish_in(s, job_id)
                s.commit()
                return Outcome("superseded")
            if coll.embedder_model_id is None:
                emb = self.w.embedders.default
                coll.embedder_model_id = emb.model_id
                coll.embedder_dim = emb.dim
                coll.embedder_max_tokens = emb.max_tokens
            old_hash = doc.indexed_hash
            swap_chunks(s, doc, coll.generation, spans, vectors)
            doc.status = DocumentStatus.INDEXED.value
            doc.text = parsed.text
            doc.layout = layout_of(parsed)
            doc.pages = parsed.page_count
            doc.chunk_count = len(spans)
            doc.indexed_hash = doc.content_hash
            doc.indexed_at = utcnow()
            if mtime_ns is not None:
                doc.source_mtime_ns = mtime_ns
            _finish_in(s, job_id, stage="indexed", chunks_embedded=embedded)
            self.w.on_step("before_sql_commit")
            s.commit()
            self.w.on_step("after_sql_commit")
            if old_hash != doc.content_hash:
                release_blob(s, self.w.blobs, old_hash)
        return Outcome("indexed", embedded=embedded, reused=len(spans) - embedded)

    def _fail(
        self, doc_id: int, job_id: int | None, code: ErrorCode, message: str, mtime: int | None
    ) -> None:
        with self.w.fenced() as s:
            doc = s.get(Document, doc_id)
            if doc is not None and doc.status != DocumentStatus.DELETING.value:
                mark_failed(doc, code, message)
                if mtime is not None:
                    doc.source_mtime_ns = mtime
            _finish_in(s, job_id)
            s.commit()
        log.info("document %d failed: %s (%s)", doc_id, code.value, message)


def _finish_in(s: Session, job_id: int | None, **progress: object) -> None:
    job = s.get(Job, job_id) if job_id is not None else None
    if job is not None:
        job.progress = {**job.progress, **progress}
        finish(job)


def _superseded(doc: Document, coll: Collection, payload: dict[str, object]) -> bool:
    # A newer version, a delete, or the collection's delete came in after the work was queued.
    return (
        doc.status == DocumentStatus.DELETING.value
        or coll.status == "deleting"
        or doc.content_hash != payload.get("content_hash")
    )


def mark_failed(doc: Document, code: ErrorCode, message: str) -> None:
    """A failed replacement keeps the previous version's chunks searchable."""
    doc.status = DocumentStatus.FAILED.value
    doc.error_code = code.value
    doc.error = message
