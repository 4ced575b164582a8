"""Grounded's retrieval as a LangChain retriever (needs only `langchain-core`).

from retrieval.langchain import GroundedRetriever
retriever = GroundedRetriever(
    sessions=c.sessions, indexes=c.indexes, embedders=c.embedders, collections=["default"]
)
docs = retriever.invoke("how many days of leave?")
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from data.errors import NotFoundError
from data.models import Collection
from data.protocols import Embedders
from retrieval.index_store import IndexStore
from retrieval.search import Filters, search


class GroundedRetriever(BaseRetriever):
    """The same search as `/v1/search`: chunks with pages, heading and cosine `score`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    sessions: sessionmaker[Session]
    indexes: IndexStore
    embedders: Any  # an `Embedders`; a Protocol can't be an isinstance check for pydantic
    collections: list[str] = ["default"]
    top_k: int = 5
    filters: Filters | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        with self.sessions() as s:
            colls = list(s.scalars(select(Collection).where(Collection.name.in_(self.collections))))
            missing = set(self.collections) - {c.name for c in colls}
            if missing:
                raise NotFoundError(f"collection(s) not found: {sorted(missing)}")
            embedders: Embedders = self.embedders
            hits = search(s, self.indexes, embedders, query, colls, self.top_k, self.filters)
        return [LCDocument(page_content=h.text, metadata=_metadata(h.__dict__)) for h in hits]


def _metadata(hit: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hit.items() if k != "text"}
