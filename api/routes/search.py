"""/v1/search: dense retrieval over collections."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ContainerDep, SessionDep
from api.schemas import HitOut, SearchIn, SearchOut
from ingest.uploads import check_embedder, get_collection
from retrieval.search import search

router = APIRouter(prefix="/v1", tags=["search"])


@router.post("/search")
def search_chunks(body: SearchIn, session: SessionDep, container: ContainerDep) -> SearchOut:
    """The `top_k` chunks closest to the query; `score` is cosine similarity."""
    colls = [get_collection(session, name) for name in dict.fromkeys(body.collections)]
    for coll in colls:
        check_embedder(container.embedders, coll)
    hits = search(session, container.indexes, container.embedders, body.query, colls, body.top_k)
    return SearchOut(hits=[HitOut(**h.__dict__) for h in hits])
