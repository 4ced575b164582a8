"""Deleting a document: hide it from search at once, let the writer remove rows and vectors."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from data.errors import NotFoundError
from data.jobs import JobType, enqueue
from data.models import Document
from data.types import DocumentStatus


def request_delete(session: Session, document_id: int) -> Document:
    """Mark the document `deleting` (search skips it from now on) and queue its removal."""
    doc = session.scalar(select(Document).where(Document.id == document_id).with_for_update())
    if doc is None:
        raise NotFoundError(f"document {document_id} not found")
    if doc.status != DocumentStatus.DELETING.value:
        doc.status = DocumentStatus.DELETING.value
        enqueue(session, type=JobType.DELETE, collection_id=doc.collection_id, document_id=doc.id)
    session.commit()
    return doc
