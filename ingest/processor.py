"""Runs one job for the single writer: parse (sandboxed) → chunk → embed → one SQL commit."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from data.jobs import JobType, finish
from data.leases import WRITER, fence
from data.models import Chunk, Collection, Document, IndexLog, Job, utcnow
from data.protocols import Embedder
from data.types import ChunkSpan, DocumentStatus, ErrorCode, ParsedDocument
from ingest.blobs import BlobStore
from ingest.chunking import TokenChunker
from ingest.errors import NoTextError, ParseError
from ingest.parsers import PARSERS
from ingest.sandbox import parse_in_subprocess
from ingest.uploads import release_blob

log = logging.getLogger(__name__)
Step = Callable[[str], None]


@dataclass(frozen=True)
class ProcessorConfig:
    """Limits and sizes the processor works with."""

    parse_timeout_s: float = 120.0
    parse_memory_mb: int | None = 4096
    chunk_tokens: int = 0
    chunk_overlap_tokens: int = 24
    lease_ttl_s: float = 30.0
    # format → "module:function"; None means the built-in parsers (tests plug in others).
    parsers: dict[str, str] | None = None


def text_hash(text: str) -> str:
    """The key under which a chunk's vector is reused."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class JobProcessor:
    """Executes ingest and delete jobs; every SQL write is fenced by the writer lease."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        embedder: Embedder,
        config: ProcessorConfig,
        holder: str,
        on_step: Step | None = None,
    ) -> None:
        self.sessions = sessions
        self.blobs = blobs
        self.embedder = embedder
        self.config = config
        self.holder = holder
        self.on_step: Step = on_step or (lambda _step: None)
        tokens = min(config.chunk_tokens or embedder.max_tokens, embedder.max_tokens)
        self.chunker = TokenChunker(
            embedder.tokenizer,
            max_tokens=tokens,
            overlap_tokens=min(config.chunk_overlap_tokens, tokens // 4),
        )

    def run(self, job_id: int) -> int | None:
        """Do one claimed job; returns its collection id. Document failures are recorded."""
        with self.sessions() as s:
            job = s.get(Job, job_id)
            if job is None:
                return None
            kind, cid = job.type, job.collection_id
        if kind == JobType.DELETE.value:
            self._delete(job_id)
        else:
            self._ingest(job_id)
        return cid

    def _ingest(self, job_id: int) -> None:
        with self.sessions() as s:
            job = s.get(Job, job_id)
            assert job is not None
            payload = dict(job.payload)
            doc = s.get(Document, job.document_id)
            if doc is None or self._superseded(doc, payload):
                fence(s, WRITER, self.holder, self.config.lease_ttl_s)
                finish(job)
                s.commit()
                return
            fence(s, WRITER, self.holder, self.config.lease_ttl_s)
            doc.status = DocumentStatus.PROCESSING.value
            s.commit()
            doc_id, fmt = doc.id, payload["format"]
        try:
            parsed = self._parse(fmt, payload)
            self.on_step("after_parse")
            spans = self.chunker.split(parsed)
            if not spans:
                raise NoTextError("the document contains no text")
            vectors = self._vectors(spans)
            self.on_step("after_embed")
        except ParseError as exc:
            self._fail(job_id, doc_id, exc.code, exc.message)
            return
        self._commit(job_id, doc_id, payload, parsed, spans, vectors)

    def _superseded(self, doc: Document, payload: dict[str, object]) -> bool:
        # A newer upload or a delete came in after this job was queued.
        return doc.status == DocumentStatus.DELETING.value or doc.content_hash != payload.get(
            "content_hash"
        )

    def _parse(self, fmt: str, payload: dict[str, object]) -> ParsedDocument:
        path = self.blobs.path_for(str(payload["content_hash"]))
        password = payload.get("password")
        parsers = self.config.parsers or PARSERS
        return parse_in_subprocess(
            parsers[fmt],
            str(path),
            password=str(password) if password else None,
            timeout_s=self.config.parse_timeout_s,
            memory_limit_mb=self.config.parse_memory_mb,
        )

    def _vectors(self, spans: list[ChunkSpan]) -> np.ndarray:
        """Vectors for `spans`, reusing any stored vector of identical text from this model."""
        hashes = [text_hash(sp.text) for sp in spans]
        known = self._known_vectors(sorted(set(hashes)))
        missing = [i for i, h in enumerate(hashes) if h not in known]
        out = np.zeros((len(spans), self.embedder.dim), dtype=np.float32)
        if missing:
            fresh = self.embedder.embed_batch([spans[i].text for i in missing], "passage")
            out[missing] = fresh
        for i, h in enumerate(hashes):
            if h in known:
                out[i] = known[h]
        log.info("embedded %d chunks, reused %d", len(missing), len(spans) - len(missing))
        return out

    def _known_vectors(self, hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self.sessions() as s:
            for i in range(0, len(hashes), 500):
                q = (
                    select(Chunk.text_hash, Chunk.vector)
                    .join(Collection, Collection.id == Chunk.collection_id)
                    .where(
                        Chunk.text_hash.in_(hashes[i : i + 500]),
                        Collection.embedder_model_id == self.embedder.model_id,
                    )
                )
                for h, vec in s.execute(q):
                    found[h] = np.frombuffer(vec, dtype=np.float32)
        return found

    def _commit(
        self,
        job_id: int,
        doc_id: int,
        payload: dict[str, object],
        parsed: ParsedDocument,
        spans: list[ChunkSpan],
        vectors: np.ndarray,
    ) -> None:
        """Swap the document's chunks in one transaction: readers see old or new, never both."""
        with self.sessions() as s:
            # The fence's UPDATE comes first so the transaction holds the write lock from here on.
            fence(s, WRITER, self.holder, self.config.lease_ttl_s)
            job = s.get(Job, job_id)
            doc = s.get(Document, doc_id, with_for_update=True)
            assert job is not None
            if doc is None or self._superseded(doc, payload):
                finish(job)
                s.commit()
                return
            coll = s.get(Collection, doc.collection_id)
            assert coll is not None
            if coll.embedder_model_id is None:
                coll.embedder_model_id = self.embedder.model_id
                coll.embedder_dim = self.embedder.dim
                coll.embedder_max_tokens = self.embedder.max_tokens
            elif coll.embedder_model_id != self.embedder.model_id:
                self._mark_failed(
                    doc, ErrorCode.EMBEDDER_MISMATCH, f"collection uses {coll.embedder_model_id}"
                )
                finish(job)
                s.commit()
                return
            old_hash = doc.indexed_hash
            _remove_chunks(s, doc)
            _insert_chunks(s, doc, spans, vectors)
            doc.status = DocumentStatus.INDEXED.value
            doc.text = parsed.text
            doc.pages = parsed.page_count
            doc.chunk_count = len(spans)
            doc.indexed_hash = doc.content_hash
            doc.indexed_at = utcnow()
            finish(job)
            self.on_step("before_sql_commit")
            s.commit()
            self.on_step("after_sql_commit")
            if old_hash != doc.content_hash:
                release_blob(s, self.blobs, old_hash)

    def _fail(self, job_id: int, doc_id: int, code: ErrorCode, message: str) -> None:
        with self.sessions() as s:
            fence(s, WRITER, self.holder, self.config.lease_ttl_s)
            job = s.get(Job, job_id)
            doc = s.get(Document, doc_id)
            assert job is not None
            if doc is not None and doc.status != DocumentStatus.DELETING.value:
                self._mark_failed(doc, code, message)
            finish(job)
            s.commit()
        log.info("document %d failed: %s (%s)", doc_id, code.value, message)

    @staticmethod
    def _mark_failed(doc: Document, code: ErrorCode, message: str) -> None:
        # A failed replacement keeps the previous version's chunks searchable.
        doc.status = DocumentStatus.FAILED.value
        doc.error_code = code.value
        doc.error = message

    def _delete(self, job_id: int) -> None:
        with self.sessions() as s:
            fence(s, WRITER, self.holder, self.config.lease_ttl_s)
            job = s.get(Job, job_id)
            assert job is not None
            doc = s.get(Document, job.document_id, with_for_update=True)
            hashes: set[str | None] = set()
            if doc is not None:
                hashes = {doc.content_hash, doc.indexed_hash}
                _remove_chunks(s, doc)
                s.delete(doc)
            finish(job)
            s.commit()
            self.on_step("after_sql_commit")
            for h in hashes:
                release_blob(s, self.blobs, h)


def _remove_chunks(s: Session, doc: Document) -> None:
    ids = list(s.scalars(select(Chunk.id).where(Chunk.document_id == doc.id)))
    if not ids:
        return
    s.add_all([IndexLog(collection_id=doc.collection_id, chunk_id=i, op=-1) for i in ids])
    for i in range(0, len(ids), 500):
        s.execute(delete(Chunk).where(Chunk.id.in_(ids[i : i + 500])))


def _insert_chunks(s: Session, doc: Document, spans: list[ChunkSpan], vectors: np.ndarray) -> None:
    rows = [
        Chunk(
            document_id=doc.id,
            collection_id=doc.collection_id,
            ordinal=sp.ordinal,
            start_offset=sp.start,
            end_offset=sp.end,
            page_start=sp.page_start,
            page_end=sp.page_end,
            page_label=sp.page_label,
            heading=sp.heading,
            text=sp.text,
            token_count=sp.token_count,
            text_hash=text_hash(sp.text),
            vector=vectors[i].astype(np.float32).tobytes(),
        )
        for i, sp in enumerate(spans)
    ]
    s.add_all(rows)
    s.flush()
    s.add_all([IndexLog(collection_id=doc.collection_id, chunk_id=r.id, op=1) for r in rows])
