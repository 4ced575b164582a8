"""Re-chunk and re-embed a collection with another model into a new index generation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from data.errors import ConflictError, ForbiddenError, InvalidInputError
from data.jobs import JobStatus, JobType, enqueue, finish
from data.models import Chunk, Collection, Document, IndexLog, Job
from data.protocols import Embedder
from data.types import DocumentStatus, ParsedDocument
from ingest import detect
from ingest.chunkstore import parsed_from, swap_chunks
from ingest.errors import ParseError
from ingest.indexing import DocumentIndexer
from ingest.writer import Progress, Writer

log = logging.getLogger(__name__)
DEFAULT_MODEL = "default"  # rebuild with the server's configured model


def request_rebuild(s: Session, coll: Collection, model: str, allowed_roots: Sequence[Path]) -> Job:
    """Queue a rebuild of `coll` with the model folder `model` (or 'default'), which must
    lie under one of `allowed_roots`."""
    path = None if model == DEFAULT_MODEL else str(allowed_model_folder(model, allowed_roots))
    busy = s.scalar(
        select(Job.id).where(
            Job.collection_id == coll.id,
            Job.type == JobType.REBUILD.value,
            Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
        )
    )
    if busy is not None:
        raise ConflictError(f"collection {coll.name!r} is already being rebuilt (job {busy})")
    payload = {"embedding_model": path, "generation": coll.generation + 1}
    job = enqueue(s, type=JobType.REBUILD, collection_id=coll.id, payload=payload)
    s.commit()
    return job


def allowed_model_folder(model: str, allowed_roots: Sequence[Path]) -> Path:
    """`model` resolved, if it is a folder under an allowed root.

    Any path outside the roots gets one and the same refusal whether or not it exists, so
    the endpoint can't be used to probe the server's file system.
    """
    p = Path(model)
    resolved = p.resolve() if p.is_absolute() else None
    roots = [r.resolve() for r in allowed_roots]
    if resolved is None or not any(resolved.is_relative_to(r) for r in roots):
        raise ForbiddenError(
            "embedding_model must be 'default' or an absolute path to a model folder under "
            "an allowed model root (GROUNDED_MODEL_ROOTS)"
        )
    if not resolved.is_dir():
        raise InvalidInputError(f"embedding_model is not a folder: {model!r}")
    return resolved


def rebuild_collection(w: Writer, indexer: DocumentIndexer, job_id: int) -> None:
    """Fill the next generation document by document, then swap it in in one commit."""
    progress = Progress(job_id)
    with w.sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None
        payload, cid = dict(job.payload), job.collection_id
        coll = s.get(Collection, cid)
        stale = coll is None or coll.status != "ready" or coll.generation >= payload["generation"]
    if stale:
        _close(w, job_id, progress, "the collection was deleted or rebuilt meanwhile")
        return
    target, path = int(payload["generation"]), payload.get("embedding_model")
    try:
        emb = w.embedders.load(path)
    except Exception as exc:  # any loader error: a bad folder must not kill the worker
        _close(w, job_id, progress, f"can't load the model at {path!r}: {exc}")
        return
    if not payload.get("started"):
        _purge(w, job_id, cid, target)
    todo, total = _todo(w, cid, target)
    progress.set("documents_total", total)
    progress.set("documents_done", total - len(todo))
    for doc_id in todo:
        _rebuild_doc(w, indexer, emb, doc_id, target, progress)
        progress.add("documents_done")
        progress.maybe_save(w)
        w.on_step("rebuild_after_doc")
    _swap(w, job_id, cid, target, emb, path, progress)
    w.on_step("rebuild_after_swap")
    log.info("collection %d rebuilt with %s as generation %d", cid, emb.model_id, target)


def purge_retired(w: Writer, now: datetime, grace_s: float) -> int:
    """Delete generations swapped out more than `grace_s` ago; returns the chunks removed.

    Searches that read the old generation just before a swap may still look its rows up,
    so they stay for a grace period instead of vanishing under those readers.
    """
    removed = 0
    with w.sessions() as s:
        retired = s.execute(
            select(Collection.id, Collection.generation, func.max(Job.finished_at))
            .join(Job, Job.collection_id == Collection.id)
            .where(Job.type == JobType.REBUILD.value, Job.status == JobStatus.SUCCEEDED.value)
            .group_by(Collection.id, Collection.generation)
        ).all()
    for cid, gen, swapped in retired:
        if swapped is None or _as_utc(swapped) > now - timedelta(seconds=grace_s):
            continue
        with w.fenced() as s:
            old = Chunk.collection_id == cid, Chunk.generation < gen
            removed += s.execute(delete(Chunk).where(*old)).rowcount or 0  # type: ignore[attr-defined]
            s.execute(
                delete(IndexLog).where(IndexLog.collection_id == cid, IndexLog.generation < gen)
            )
            s.commit()
    return removed


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _purge(w: Writer, job_id: int, cid: int, target: int) -> None:
    """Drop what an earlier, abandoned rebuild left in generations >= target."""
    with w.fenced() as s:
        s.execute(delete(Chunk).where(Chunk.collection_id == cid, Chunk.generation >= target))
        s.execute(
            delete(IndexLog).where(IndexLog.collection_id == cid, IndexLog.generation >= target)
        )
        job = s.get(Job, job_id)
        assert job is not None
        job.payload = {**job.payload, "started": True}
        s.commit()


def _todo(w: Writer, cid: int, target: int) -> tuple[list[int], int]:
    """Indexed documents without chunks in the target generation yet (a resume skips the rest)."""
    with w.sessions() as s:
        # Every document with chunks: a failed replacement still serves its last good version.
        indexed = select(Document.id).where(
            Document.collection_id == cid,
            Document.indexed_hash.is_not(None),
            Document.status != DocumentStatus.DELETING.value,
        )
        done = select(Chunk.document_id).where(
            Chunk.collection_id == cid, Chunk.generation == target
        )
        ids = list(s.scalars(indexed.where(Document.id.not_in(done)).order_by(Document.id)))
        total = int(s.scalar(select(func.count()).select_from(indexed.subquery())) or 0)
    return ids, total


def _rebuild_doc(
    w: Writer, indexer: DocumentIndexer, emb: Embedder, doc_id: int, target: int, progress: Progress
) -> None:
    with w.sessions() as s:
        doc = s.get(Document, doc_id)
        if doc is None:
            return
        parsed = _parsed(indexer, doc)
    spans = indexer.chunker(emb).split(parsed)
    vectors, embedded = indexer.vectors(emb, spans)
    with w.fenced() as s:
        doc = s.get(Document, doc_id)
        if doc is None or doc.status == DocumentStatus.DELETING.value:
            return
        swap_chunks(s, doc, target, spans, vectors)
        s.commit()
    progress.add("chunks_embedded", embedded)
    progress.add("chunks_reused", len(spans) - embedded)


def _parsed(indexer: DocumentIndexer, doc: Document) -> ParsedDocument:
    """From SQL when the layout is stored; documents indexed before that are parsed again."""
    if doc.layout is not None:
        return parsed_from(doc.text or "", doc.layout)
    fmt = {media: name for name, media in detect.MEDIA_TYPES.items()}.get(doc.media_type)
    try:
        if fmt is not None and doc.indexed_hash:
            return indexer.parse(fmt, {"content_hash": doc.indexed_hash})
    except ParseError as exc:
        log.warning("document %d: %s; re-chunking its text without pages", doc.id, exc)
    return ParsedDocument(text=doc.text or "")


def _swap(
    w: Writer,
    job_id: int,
    cid: int,
    target: int,
    emb: Embedder,
    path: str | None,
    progress: Progress,
) -> None:
    """One commit: searches read the new generation, with the new model, from here on."""
    with w.fenced() as s:
        coll = s.get(Collection, cid, with_for_update=True)
        assert coll is not None
        coll.generation = target
        coll.embedder_model_id, coll.embedder_path = emb.model_id, path
        coll.embedder_dim, coll.embedder_max_tokens = emb.dim, emb.max_tokens
        counted = (
            select(func.count())
            .where(Chunk.document_id == Document.id, Chunk.generation == target)
            .scalar_subquery()
        )
        s.execute(update(Document).where(Document.collection_id == cid).values(chunk_count=counted))
        job = s.get(Job, job_id)
        assert job is not None
        progress.write(job)
        finish(job)
        s.commit()


def _close(w: Writer, job_id: int, progress: Progress, error: str) -> None:
    with w.fenced() as s:
        job = s.get(Job, job_id)
        assert job is not None
        progress.write(job)
        finish(job, error=error)
        s.commit()
