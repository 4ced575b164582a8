"""/v1/search: dense retrieval over collections."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContainerDep, SessionDep
from api.errors import responses
from api.schemas import FiltersIn, HitOut, SearchIn, SearchOut
from data.globs import Glob
from ingest.uploads import check_embedder, get_collection
from retrieval.search import Filters, search

router = APIRouter(prefix="/v1", tags=["search"])


def to_filters(body: FiltersIn | None) -> Filters | None:
    """Domain filters from the wire form; a bad glob is a 422."""
    if body is None:
        return None
    if body.filename is not None:
        Glob(body.filename)
    ids = tuple(body.document_ids) if body.document_ids is not None else None
    return Filters(ids, body.filename, body.page_from, body.page_to)


@router.post("/search", responses=responses(400, 404, 409, 413, 422))
def search_chunks(body: SearchIn, session: SessionDep, container: ContainerDep) -> SearchOut:
    """The `top_k` chunks closest to the query; `score` is cosine similarity."""
    colls = [get_collection(session, name) for name in dict.fromkeys(body.collections)]
    for coll in colls:
        check_embedder(container.embedders, coll)
    filters = to_filters(body.filters)
    hits = search(
        session,
        container.indexes,
        container.embedders,
        body.query,
        colls,
        body.top_k,
        filters,
        container.reranker,
        container.settings.rerank.top_n,
        container.search_lexical,
    )
    return SearchOut(hits=[HitOut(**h.__dict__) for h in hits])
