"""The composition root's typed container: every long-lived component, built once."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.settings import Settings
from data.db import make_engine, make_sessionmaker
from ingest.blobs import BlobStore
from retrieval.embedder import Embedder, SentenceTransformerEmbedder
from retrieval.index_store import IndexStore
from retrieval.vector_index import gpu_available

log = logging.getLogger(__name__)


@dataclass
class Container:
    """Engine, sessions, embedder, indexes and blob store for one process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    embedder: Embedder
    indexes: IndexStore
    blobs: BlobStore

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def build_embedder(settings: Settings) -> Embedder:
    """The configured embedding model (the bundled MiniLM unless a local path is set)."""
    emb = settings.embedding
    return SentenceTransformerEmbedder(
        emb.model_path or None,
        model_id=emb.model_id,
        query_prefix=emb.query_prefix,
        passage_prefix=emb.passage_prefix,
        device=emb.device,
        batch_size=emb.batch_size,
    )


def build_container(settings: Settings, *, embedder: Embedder | None = None) -> Container:
    """Build every component; tests pass a prebuilt embedder to avoid reloading the model."""
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    use_gpu = settings.faiss_gpu == "on" or (settings.faiss_gpu == "auto" and gpu_available())
    return Container(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        embedder=embedder or build_embedder(settings),
        indexes=IndexStore(settings.index_dir, use_gpu=use_gpu),
        blobs=BlobStore(settings.originals_dir),
    )
