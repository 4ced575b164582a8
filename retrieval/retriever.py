"""The one search every caller uses: HTTP, chat, OpenAI endpoints, CLI, LangChain, eval."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session

from data.models import DEFAULT_COLLECTION, Collection
from data.protocols import Embedders, Reranker
from data.repositories import check_embedder, resolve_collections
from data.scope import Scope
from data.types import RetrievalMode
from retrieval.index_store import IndexStore
from retrieval.lexical import LexicalStore
from retrieval.naming import named_documents
from retrieval.search import Filters, Fusion, Hits, search


@dataclass(frozen=True)
class RetrieverConfig:
    """How the Retriever ranks: its mode, fusion weights and reranking depth."""

    mode: RetrievalMode = RetrievalMode.HYBRID
    fusion: Fusion = field(default_factory=Fusion)
    rerank_top_n: int = 20


class Retriever:
    """Resolves collections within a scope, then runs the one configured search."""

    def __init__(
        self,
        indexes: IndexStore,
        embedders: Embedders,
        lexical: LexicalStore,
        *,
        reranker: Reranker | None = None,
        config: RetrieverConfig | None = None,
        observe: Callable[[float], None] | None = None,
    ) -> None:
        self.indexes = indexes
        self.embedders = embedders
        self.lexical = lexical
        self.reranker = reranker
        self.config = config or RetrieverConfig()
        self.observe = observe  # called with each search's seconds (the API's metrics)

    def with_config(self, **changes: Any) -> Retriever:
        """The same components with a changed config (eval compares modes this way)."""
        return Retriever(
            self.indexes,
            self.embedders,
            self.lexical,
            reranker=self.reranker,
            config=replace(self.config, **changes),
            observe=self.observe,
        )

    def collections(
        self, session: Session, names: Sequence[str] | None, *, scope: Scope
    ) -> list[Collection]:
        """The named collections (default: "default") in the scope, each searchable with the
        loaded embedders; 404 for a missing or out-of-scope one, 409 for one being deleted."""
        colls = resolve_collections(session, names or [DEFAULT_COLLECTION], scope=scope)
        for coll in colls:
            check_embedder(self.embedders, coll)
        return colls

    def search(
        self,
        session: Session,
        query: str,
        *,
        scope: Scope,
        collections: Sequence[str] | None,
        top_k: int,
        filters: Filters | None = None,
        prefer_named: bool = False,
    ) -> Hits:
        """The `top_k` best chunks for `query`, best first. With `prefer_named`, chunks of the
        documents the query names by filename come first (`Hits.named` lists them)."""
        started = time.perf_counter()
        try:
            return self._search(session, query, scope, collections, top_k, filters, prefer_named)
        finally:
            if self.observe is not None:
                self.observe(time.perf_counter() - started)

    def _search(
        self,
        session: Session,
        query: str,
        scope: Scope,
        collections: Sequence[str] | None,
        top_k: int,
        filters: Filters | None,
        prefer_named: bool,
    ) -> Hits:
        colls = self.collections(session, collections, scope=scope)
        hits = self._run(session, query, colls, top_k, filters)
        named = named_documents(session, colls, query) if prefer_named else []
        if not named:
            return hits
        first = self._run(session, query, colls, top_k, _narrow(filters, named))
        seen = {h.chunk_id for h in first}
        merged = [*first, *(h for h in hits if h.chunk_id not in seen)][:top_k]
        return Hits.of(merged, max(hits.best_score, first.best_score), frozenset(named))

    def _run(
        self,
        session: Session,
        query: str,
        colls: Sequence[Collection],
        top_k: int,
        filters: Filters | None,
    ) -> Hits:
        cfg = self.config
        return search(
            session,
            self.indexes,
            self.embedders,
            query,
            colls,
            top_k,
            filters,
            reranker=self.reranker,
            rerank_top_n=cfg.rerank_top_n,
            lexical=self.lexical if cfg.mode is RetrievalMode.HYBRID else None,
            fusion=cfg.fusion,
        )


def _narrow(filters: Filters | None, named: list[int]) -> Filters:
    """`filters` further narrowed to the named documents (within any documents it names)."""
    base = filters or Filters()
    ids = tuple(named if base.document_ids is None else set(named) & set(base.document_ids))
    return replace(base, document_ids=ids)
