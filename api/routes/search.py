"""/v1/search: the Retriever's search over collections."""

from __future__ import annotations

from fastapi import APIRouter

from api.audit import AuditDep, audited
from api.deps import ContainerDep, ScopeDep, SessionDep
from api.errors import responses
from api.schemas import FiltersIn, HitOut, SearchIn, SearchOut
from data.audit import Action
from data.globs import Glob
from retrieval.search import Filters

router = APIRouter(prefix="/v1", tags=["search"])


def to_filters(body: FiltersIn | None) -> Filters | None:
    """Domain filters from the wire form; a bad glob is a 422."""
    if body is None:
        return None
    if body.filename is not None:
        Glob(body.filename)
    ids = tuple(body.document_ids) if body.document_ids is not None else None
    return Filters(ids, body.filename, body.page_from, body.page_to)


@router.post(
    "/search",
    dependencies=[audited(Action.SEARCH)],
    responses=responses(400, 404, 409, 413, 422),
)
def search_chunks(
    body: SearchIn,
    session: SessionDep,
    container: ContainerDep,
    scope: ScopeDep,
    audit: AuditDep,
) -> SearchOut:
    """The `top_k` best chunks for the query; `score` is cosine similarity."""
    audit.about(collection=",".join(body.collections), summary=body.query)
    hits = container.retriever.search(
        session,
        body.query,
        scope=scope,
        collections=body.collections,
        top_k=body.top_k,
        filters=to_filters(body.filters),
    )
    return SearchOut(hits=[HitOut(**h.__dict__) for h in hits])
