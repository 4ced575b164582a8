"""/v1/documents: upload, list, inspect, download, replace and delete documents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from fastapi.responses import FileResponse

from api.audit import AuditDep, AuditIntent, audited
from api.container import Container
from api.deps import ContainerDep, IdPath, ScopeDep, SessionDep, require
from api.errors import responses
from api.schemas import DocumentOut, Page
from data import repositories as repo
from data.audit import Action
from data.errors import NotFoundError
from data.jobs import progress_for
from data.models import Collection, Document
from data.pagination import DEFAULT_LIMIT, paginate
from data.scope import Role, Scope
from data.types import DocumentStatus
from ingest.deletion import request_delete
from ingest.uploads import UploadOutcome, accept_upload, clean_filename

router = APIRouter(prefix="/v1/documents", tags=["documents"])
EDITOR = require(Role.EDITOR)
_READ = 1 << 20
# 200: these bytes are already in (nothing queued).
_UPLOADED = {200: {"model": DocumentOut}, **responses(400, 404, 409, 413, 415, 422)}


def to_out(doc: Document, collection: str, progress: dict[str, Any] | None = None) -> DocumentOut:
    """Wire form of a document (`progress`: its pending job's, see `with_progress`)."""
    return DocumentOut(
        id=doc.id,
        collection=collection,
        filename=doc.filename,
        source_id=doc.source_id,
        status=doc.status,
        error_code=doc.error_code,
        error=doc.error,
        media_type=doc.media_type,
        size=doc.size,
        content_hash=doc.content_hash,
        pages=doc.pages,
        chunk_count=doc.chunk_count,
        created_at=doc.created_at,
        updated_at=doc.updated_at,
        indexed_at=doc.indexed_at,
        progress=progress,
    )


def with_progress(session: SessionDep, docs: list[Document]) -> dict[int, dict[str, Any]]:
    """The pending ingest job's progress of each document that is queued or processing."""
    pending = {DocumentStatus.QUEUED.value, DocumentStatus.PROCESSING.value}
    return progress_for(session, [d.id for d in docs if d.status in pending])


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    while block := f.read(_READ):
        yield block


def _upload(
    container: Container, session: SessionDep, scope: Scope, file: UploadFile, **kwargs: object
) -> tuple[UploadOutcome, str]:
    max_bytes = int(container.settings.ingest.max_upload_mb * 1_000_000)
    staged = container.blobs.stage(_chunks(file.file), max_bytes=max_bytes)
    outcome = accept_upload(
        session,
        container.blobs,
        staged,
        embedders=container.embedders,
        scope=scope,
        **kwargs,  # type: ignore[arg-type]
    )
    coll = session.get(Collection, outcome.document.collection_id)
    return outcome, coll.name if coll else ""


def _about(audit: AuditIntent, doc: Document, collection: str) -> None:
    audit.about(
        collection=collection,
        object_id=doc.id,
        summary=doc.filename,
        payload_hash=doc.content_hash,
    )


@router.post(
    "", status_code=202, dependencies=[EDITOR, audited(Action.UPLOAD)], responses=_UPLOADED
)
def upload_document(
    file: Annotated[UploadFile, File()],
    session: SessionDep,
    container: ContainerDep,
    scope: ScopeDep,
    response: Response,
    audit: AuditDep,
    collection: Annotated[str, Form()] = "default",
    password: Annotated[str | None, Form()] = None,
    replace: Annotated[bool, Form()] = False,
) -> DocumentOut:
    """Queue a file for indexing: 202 if work was queued, 200 if these bytes are already in."""
    audit.about(collection=collection, summary=clean_filename(file.filename))
    outcome, coll = _upload(
        container,
        session,
        scope,
        file,
        collection=collection,
        filename=clean_filename(file.filename),
        password=password or None,
        replace=replace,
    )
    if not outcome.queued:
        response.status_code = 200
    _about(audit, outcome.document, coll)
    return to_out(outcome.document, coll)


@router.put(
    "/{document_id}",
    status_code=202,
    dependencies=[EDITOR, audited(Action.REPLACE)],
    responses=_UPLOADED,
)
def replace_document(
    document_id: IdPath,
    file: Annotated[UploadFile, File()],
    session: SessionDep,
    container: ContainerDep,
    scope: ScopeDep,
    response: Response,
    audit: AuditDep,
    password: Annotated[str | None, Form()] = None,
) -> DocumentOut:
    """Replace a document's content; the old version stays searchable until the new one is."""
    doc = repo.get_document(session, document_id, scope=scope)
    coll = session.get(Collection, doc.collection_id)
    assert coll is not None
    outcome, name = _upload(
        container,
        session,
        scope,
        file,
        collection=coll.name,
        filename=doc.filename,
        password=password or None,
        replace=True,
        document_id=document_id,
    )
    if not outcome.queued:
        response.status_code = 200
    _about(audit, outcome.document, name)
    return to_out(outcome.document, name)


@router.get("", responses=responses(404, 409, 422))
def list_documents(
    session: SessionDep,
    scope: ScopeDep,
    collection: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[DocumentOut]:
    """Documents, oldest first, optionally of one collection."""
    coll = repo.get_collection(session, collection, scope=scope) if collection is not None else None
    stmt = repo.documents_query(scope=scope, collection_id=coll.id if coll else None)
    rows, nxt = paginate(session, stmt, Document.id, limit=limit, cursor=cursor)
    names = repo.collection_names(session, scope=scope)
    progress = with_progress(session, list(rows))
    return Page[DocumentOut](
        items=[to_out(d, names.get(d.collection_id, ""), progress.get(d.id)) for d in rows],
        next_cursor=nxt,
    )


@router.get("/{document_id}", responses=responses(404, 422))
def get_document(document_id: IdPath, session: SessionDep, scope: ScopeDep) -> DocumentOut:
    """One document's state, with its progress while it is queued or processing."""
    doc = repo.get_document(session, document_id, scope=scope)
    coll = session.get(Collection, doc.collection_id)
    return to_out(doc, coll.name if coll else "", with_progress(session, [doc]).get(doc.id))


@router.get(
    "/{document_id}/file",
    response_class=FileResponse,
    dependencies=[audited(Action.DOCUMENT_READ)],
    responses={
        200: {"content": {"*/*": {}}, "description": "The original file"},
        **responses(404, 422),
    },
)
def download_document(
    document_id: IdPath,
    session: SessionDep,
    container: ContainerDep,
    scope: ScopeDep,
    audit: AuditDep,
) -> FileResponse:
    """The original bytes as uploaded."""
    doc = repo.get_document(session, document_id, scope=scope)
    coll = session.get(Collection, doc.collection_id)
    _about(audit, doc, coll.name if coll else "")
    path = container.blobs.path_for(doc.content_hash)
    if not path.exists():
        raise NotFoundError(f"the original of document {document_id} is no longer stored")
    return FileResponse(path, media_type=doc.media_type, filename=doc.filename)


@router.delete(
    "/{document_id}",
    status_code=202,
    dependencies=[EDITOR, audited(Action.DELETE_DOCUMENT)],
    responses=responses(404, 409, 422),
)
def delete_document(
    document_id: IdPath, session: SessionDep, scope: ScopeDep, audit: AuditDep
) -> DocumentOut:
    """Hide the document from search now; its rows, vectors and original go in the background."""
    doc = request_delete(session, document_id, scope=scope)
    coll = session.get(Collection, doc.collection_id)
    _about(audit, doc, coll.name if coll else "")
    return to_out(doc, coll.name if coll else "")
