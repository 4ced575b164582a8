"""Accepting an upload: refuse bad bytes at once, decide 'same document', enqueue the work."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from data.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    UnsupportedTypeError,
)
from data.jobs import JobType, enqueue
from data.models import Collection, Document
from data.protocols import Embedders
from data.repositories import check_embedder, find_document, get_collection, get_document
from data.scope import Scope
from data.types import DocumentStatus
from ingest import detect
from ingest.blobs import BlobStore, StagedFile, release_blob
from ingest.sealed import seal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadOutcome:
    """What an upload did: `created`/`replaced` mean work was queued; else it was a no-op."""

    document: Document
    queued: bool


def clean_filename(raw: str | None) -> str:
    """A safe document name: a relative path ('sub/a.pdf') without '..', control chars, etc."""
    parts = [p.strip() for p in (raw or "").replace("\\", "/").split("/")]
    parts = ["".join(ch for ch in p if ch.isprintable()) for p in parts]
    name = "/".join(p for p in parts if p and p not in {".", ".."})[:1024]
    if not name:
        raise InvalidInputError("the upload has no filename")
    return name


def sniff(staged: StagedFile, filename: str) -> str:
    """The format the bytes show; empty or unsupported files are refused before storing."""
    if staged.size == 0:
        raise InvalidInputError("the file is empty")
    try:
        return detect.detect_format(staged.head, filename, path=str(staged.path))
    except detect.UnsupportedTypeError as exc:
        raise UnsupportedTypeError(str(exc)) from exc


def accept_upload(
    session: Session,
    blobs: BlobStore,
    staged: StagedFile,
    *,
    collection: str,
    filename: str,
    password: str | None = None,
    replace: bool = False,
    document_id: int | None = None,
    embedders: Embedders,
    scope: Scope,
) -> UploadOutcome:
    """Register a staged upload: same name+bytes is a no-op, new bytes need `replace`."""
    try:
        coll = get_collection(session, collection, scope=scope)
        check_embedder(embedders, coll)
        fmt = sniff(staged, filename)
        doc = _existing(session, coll, filename, document_id, scope)
        if doc is not None and doc.content_hash == staged.sha256 and not _failed(doc):
            blobs.discard(staged)
            return UploadOutcome(document=doc, queued=False)
        retry = doc is not None and doc.content_hash == staged.sha256  # failed before
        if doc is not None and not (replace or retry or document_id is not None):
            raise ConflictError(
                f"{filename!r} already exists in {coll.name!r} with different content; "
                "send replace=true (or PUT /v1/documents/{id}) to replace it"
            )
        if doc is not None and doc.status == DocumentStatus.DELETING.value:
            raise ConflictError(f"{filename!r} is being deleted; try again shortly")
        if doc is not None and doc.source_id is not None:
            raise ConflictError(
                f"{filename!r} comes from a watched folder; change the file there instead"
            )
    except BaseException:
        blobs.discard(staged)
        raise
    blobs.commit(staged)
    previous = doc.content_hash if doc is not None else None
    doc = _upsert(session, coll, doc, filename, staged, fmt)
    payload: dict[str, object] = {"content_hash": staged.sha256, "format": fmt}
    if password:  # never in clear: the row (and the database's log) keeps noise
        payload["password"] = seal(blobs, password)
    enqueue(
        session, type=JobType.INGEST, collection_id=coll.id, document_id=doc.id, payload=payload
    )
    session.commit()
    # A replaced upload that was never indexed is garbage now.
    if previous and previous != staged.sha256:
        release_blob(session, blobs, previous)
    return UploadOutcome(document=doc, queued=True)


def _failed(doc: Document) -> bool:
    # Re-sending the same bytes of a failed document retries it (e.g. now with a password).
    return doc.status == DocumentStatus.FAILED.value


def _existing(
    session: Session, coll: Collection, filename: str, document_id: int | None, scope: Scope
) -> Document | None:
    if document_id is not None:
        doc = get_document(session, document_id, scope=scope)
        if doc.collection_id != coll.id:
            raise NotFoundError(f"document {document_id} not found")
        return doc
    return find_document(session, coll, filename, scope=scope)


def _upsert(
    session: Session,
    coll: Collection,
    doc: Document | None,
    filename: str,
    staged: StagedFile,
    fmt: str,
) -> Document:
    if doc is None:
        doc = Document(collection_id=coll.id, filename=filename, chunk_count=0)
        session.add(doc)
    doc.content_hash = staged.sha256
    doc.size = staged.size
    doc.media_type = detect.MEDIA_TYPES[fmt]
    doc.status = DocumentStatus.QUEUED.value
    doc.error_code = None
    doc.error = None
    session.flush()
    return doc
