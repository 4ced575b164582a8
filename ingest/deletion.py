"""Deleting a document: hide it from search at once, let the writer remove rows and vectors."""

from __future__ import annotations

from sqlalchemy.orm import Session

from data.errors import ConflictError
from data.jobs import JobType, enqueue, finish
from data.models import Document, Job
from data.repositories import get_document
from data.scope import Scope
from data.types import DocumentStatus
from ingest.blobs import release_blob
from ingest.chunkstore import remove_chunks
from ingest.writer import Writer


def request_delete(session: Session, document_id: int, *, scope: Scope) -> Document:
    """Mark the document `deleting` (search skips it from now on) and queue its removal."""
    doc = get_document(session, document_id, scope=scope, for_update=True)
    if doc.source_id is not None:
        raise ConflictError(
            f"{doc.filename!r} comes from a watched folder: remove the file there, "
            "or exclude it in the source's settings"
        )
    if doc.status != DocumentStatus.DELETING.value:
        doc.status = DocumentStatus.DELETING.value
        enqueue(session, type=JobType.DELETE, collection_id=doc.collection_id, document_id=doc.id)
    session.commit()
    return doc


def delete_now(w: Writer, doc_id: int, job_id: int | None = None) -> int:
    """Remove a document, its chunks and vectors in one commit, then its unshared original."""
    with w.fenced() as s:
        doc = s.get(Document, doc_id, with_for_update=True)
        hashes: set[str | None] = set()
        removed = 0
        if doc is not None:
            hashes = {doc.content_hash, doc.indexed_hash}
            removed = remove_chunks(s, doc)
            s.delete(doc)
        job = s.get(Job, job_id) if job_id is not None else None
        if job is not None:
            finish(job)
        s.commit()
        w.on_step("after_sql_commit")
        for h in hashes:
            release_blob(s, w.blobs, h)
    return removed
