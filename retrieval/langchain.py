"""Grounded's retrieval as a LangChain retriever (needs only `langchain-core`).

from retrieval.langchain import GroundedRetriever
retriever = GroundedRetriever(
    retriever=c.retriever, sessions=c.sessions, scope=Scope.everything(), collections=["default"]
)
docs = retriever.invoke("how many days of leave?")
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict
from sqlalchemy.orm import Session, sessionmaker

from data.scope import Scope
from retrieval.retriever import Retriever
from retrieval.search import Filters


class GroundedRetriever(BaseRetriever):
    """The container's Retriever, so the same search as `/v1/search` (hybrid unless the
    server is configured dense): chunks with pages, heading and cosine `score`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    sessions: sessionmaker[Session]
    scope: Scope  # required: what this retriever may read
    collections: list[str] = ["default"]
    top_k: int = 5
    filters: Filters | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        with self.sessions() as s:
            hits = self.retriever.search(
                s,
                query,
                scope=self.scope,
                collections=self.collections,
                top_k=self.top_k,
                filters=self.filters,
            )
        return [LCDocument(page_content=h.text, metadata=_metadata(h.__dict__)) for h in hits]


def _metadata(hit: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hit.items() if k != "text"}
