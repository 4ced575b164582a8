"""Deleting a whole collection: hidden at once, emptied by the writer in the background."""

from __future__ import annotations

import logging

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from data.errors import ConflictError
from data.jobs import JobType, enqueue, finish
from data.models import DEFAULT_COLLECTION, Collection, Document, IndexLog, Job, Source
from data.repositories import COLLECTION_DELETING, get_collection
from data.scope import Scope
from data.types import DocumentStatus
from ingest.blobs import release_blob
from ingest.chunkstore import remove_chunks
from ingest.writer import Progress, Writer

log = logging.getLogger(__name__)
_DOCS_PER_COMMIT = 50


def request_collection_delete(
    session: Session, name: str, *, scope: Scope
) -> tuple[Collection, Job]:
    """Hide the collection and its documents now and queue their removal."""
    coll = get_collection(session, name, scope=scope)
    if coll.name == DEFAULT_COLLECTION:
        raise ConflictError("the default collection can't be deleted; delete its documents")
    coll.status = COLLECTION_DELETING
    session.execute(
        update(Document)
        .where(Document.collection_id == coll.id)
        .values(status=DocumentStatus.DELETING.value)
    )
    session.execute(update(Source).where(Source.collection_id == coll.id).values(paused=True))
    job = enqueue(session, type=JobType.DELETE_COLLECTION, collection_id=coll.id)
    session.commit()
    return coll, job


def delete_collection(w: Writer, job_id: int) -> None:
    """Remove documents, chunks, vectors, sources and unshared originals, then the row."""
    progress = Progress(job_id)
    with w.sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None
        cid = job.collection_id
        progress.set("documents_total", _count_docs(s, cid))
    while True:
        with w.fenced() as s:
            docs = s.scalars(
                select(Document).where(Document.collection_id == cid).limit(_DOCS_PER_COMMIT)
            ).all()
            hashes = {h for d in docs for h in (d.content_hash, d.indexed_hash) if h}
            for doc in docs:
                progress.add("chunks_removed", remove_chunks(s, doc))
                s.delete(doc)
            progress.add("documents_deleted", len(docs))
            job = s.get(Job, job_id)
            assert job is not None
            progress.write(job)
            s.commit()
            for h in hashes:
                release_blob(s, w.blobs, h)
        if not docs:
            break
        w.on_step("after_sql_commit")
    with w.fenced() as s:
        s.execute(delete(Source).where(Source.collection_id == cid))
        s.execute(delete(IndexLog).where(IndexLog.collection_id == cid))
        coll = s.get(Collection, cid)
        if coll is not None:
            s.delete(coll)
        job = s.get(Job, job_id)
        assert job is not None
        progress.write(job)
        finish(job)
        s.commit()
    log.info("collection %d deleted", cid)


def _count_docs(s: Session, cid: int) -> int:
    return int(
        s.scalar(select(func.count()).select_from(Document).where(Document.collection_id == cid))
        or 0
    )
