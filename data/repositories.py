"""Collection and document lookups, each within a caller's scope, applied in the query.

An out-of-scope collection or document is indistinguishable from a missing one (404), so
an access rule lives here once and no caller can forget it: `scope` is a required keyword.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from data.errors import ConflictError, EmbedderMismatchError, NotFoundError
from data.models import Collection, Conversation, Document, Job, Source
from data.protocols import Embedder, Embedders
from data.scope import Scope

COLLECTION_DELETING = "deleting"
Q = TypeVar("Q", bound="Select[*tuple[Any, ...]]")


def _within(q: Q, scope: Scope) -> Q:
    if scope.collections is None:
        return q
    return q.where(Collection.name.in_(sorted(scope.collections)))


def collections_query(*, scope: Scope) -> Select[Collection]:
    """Every collection in the scope (for listing and paging)."""
    return _within(select(Collection), scope)


def find_collection(session: Session, name: str, *, scope: Scope) -> Collection | None:
    """The collection named `name` in any state, or None if unknown or out of scope."""
    return session.scalar(collections_query(scope=scope).where(Collection.name == name))


def get_collection(session: Session, name: str, *, scope: Scope) -> Collection:
    """A usable collection by name: 404 if unknown or out of scope, 409 while being deleted."""
    coll = find_collection(session, name, scope=scope)
    if coll is None:
        raise NotFoundError(f"collection {name!r} not found")
    if coll.status == COLLECTION_DELETING:
        raise ConflictError(f"collection {name!r} is being deleted")
    return coll


def resolve_collections(
    session: Session, names: Iterable[str], *, scope: Scope
) -> list[Collection]:
    """Usable collections for `names` (duplicates once, order kept); the first missing,
    out-of-scope or deleting one is a 404/409."""
    return [get_collection(session, n, scope=scope) for n in dict.fromkeys(names)]


def check_embedder(embedders: Embedders, coll: Collection) -> Embedder:
    """The embedder of the collection's vectors; refuses to mix two models in one index."""
    try:
        return embedders.for_collection(coll.embedder_model_id, coll.embedder_path)
    except EmbedderMismatchError as exc:
        raise EmbedderMismatchError(f"collection {coll.name!r}: {exc.message}") from exc


def collections_by_id(session: Session, ids: Sequence[int], *, scope: Scope) -> list[Collection]:
    """The collections with these ids that still exist in the scope, in the order given."""
    if not ids:
        return []
    rows = session.scalars(collections_query(scope=scope).where(Collection.id.in_(ids)))
    found = {c.id: c for c in rows}
    return [found[i] for i in ids if i in found]


def collection_names(session: Session, *, scope: Scope) -> dict[int, str]:
    """Id → name of every collection in the scope."""
    q = _within(select(Collection.id, Collection.name), scope)
    return {i: n for i, n in session.execute(q)}


def documents_query(*, scope: Scope, collection_id: int | None = None) -> Select[Document]:
    """Documents of the collections in the scope, optionally of one collection."""
    q = _within(select(Document).join(Collection, Collection.id == Document.collection_id), scope)
    if collection_id is not None:
        q = q.where(Document.collection_id == collection_id)
    return q


def get_document(
    session: Session, document_id: int, *, scope: Scope, for_update: bool = False
) -> Document:
    """A document by id: 404 if unknown or in a collection outside the scope."""
    q = documents_query(scope=scope).where(Document.id == document_id)
    doc = session.scalar(q.with_for_update(of=Document) if for_update else q)
    if doc is None:
        raise NotFoundError(f"document {document_id} not found")
    return doc


def find_document(
    session: Session, collection: Collection, filename: str, *, scope: Scope
) -> Document | None:
    """The document named `filename` in `collection`, or None."""
    q = documents_query(scope=scope, collection_id=collection.id)
    return session.scalar(q.where(Document.filename == filename))


def blob_in_use(session: Session, sha256: str) -> bool:
    """Whether any document's current or indexed content is `sha256` (whatever the scope:
    an original shared by two collections must outlive either)."""
    q = (
        select(func.count())
        .select_from(Document)
        .where(or_(Document.content_hash == sha256, Document.indexed_hash == sha256))
    )
    return bool(session.scalar(q))


def conversations_query(*, scope: Scope) -> Select[Conversation]:
    """The conversations the caller may see: a key's own (every one without a key)."""
    q = select(Conversation)
    return q if scope.key_id is None else q.where(Conversation.key_id == scope.key_id)


def get_conversation(session: Session, conversation_id: int, *, scope: Scope) -> Conversation:
    """A conversation by id: 404 if unknown or another key's."""
    q = conversations_query(scope=scope).where(Conversation.id == conversation_id)
    conv = session.scalar(q)
    if conv is None:
        raise NotFoundError(f"conversation {conversation_id} not found")
    return conv


def _in_scope_ids(scope: Scope) -> Select[tuple[int]]:
    return _within(select(Collection.id), scope)


def jobs_query(*, scope: Scope) -> Select[Job]:
    """Jobs of the collections in the scope (every job, even of deleted ones, for all)."""
    q = select(Job)
    return q if scope.collections is None else q.where(Job.collection_id.in_(_in_scope_ids(scope)))


def get_job(session: Session, job_id: int, *, scope: Scope) -> Job:
    """A job by id: 404 if unknown or of a collection outside the scope."""
    job = session.scalar(jobs_query(scope=scope).where(Job.id == job_id))
    if job is None:
        raise NotFoundError(f"job {job_id} not found")
    return job


def get_source(session: Session, source_id: int, *, scope: Scope) -> Source:
    """A watched folder by id: 404 if unknown or of a collection outside the scope."""
    q = select(Source).where(Source.id == source_id)
    if scope.collections is not None:
        q = q.where(Source.collection_id.in_(_in_scope_ids(scope)))
    src = session.scalar(q)
    if src is None:
        raise NotFoundError(f"source {source_id} not found")
    return src
