"""The composition root's typed container: every long-lived component, built once."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.metrics import Metrics
from api.settings import FaissGpu, LLMBackend, Settings
from data.db import make_engine, make_sessionmaker
from data.protocols import Reranker
from ingest.blobs import BlobStore
from ingest.sourceview import SourceViewer, ViewerConfig
from llm.types import ChatModel
from retrieval.embedder import Embedder, SentenceTransformerEmbedder
from retrieval.embedders import EmbedderRegistry
from retrieval.index_policy import IndexPolicy
from retrieval.index_store import IndexStore
from retrieval.lexical import LexicalStore
from retrieval.retriever import Retriever, RetrieverConfig
from retrieval.search import Fusion
from retrieval.vector_index import gpu_available, set_faiss_threads

log = logging.getLogger(__name__)


@dataclass
class Container:
    """Engine, sessions, embedder, indexes and blob store for one process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    embedder: Embedder  # the configured default
    embedders: EmbedderRegistry
    indexes: IndexStore
    lexical: LexicalStore
    blobs: BlobStore
    retriever: Retriever  # the one search every caller uses
    viewer: SourceViewer  # PDF pages for the source view, in the sandbox
    chat_model: ChatModel | None = None
    reranker: Reranker | None = None  # only when GROUNDED_RERANK__MODEL_PATH is set
    metrics: Metrics = field(default_factory=Metrics)  # this process's, for /metrics

    def __post_init__(self) -> None:
        self.metrics.watch_sql(self.sessions)
        self.metrics.instrument(self)

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()


def build_embedder(settings: Settings) -> Embedder:
    """The configured embedding model (the bundled MiniLM unless a local path is set)."""
    emb = settings.embedding
    return _local_embedder(
        settings,
        emb.model_path or None,
        model_id=emb.model_id,
        query_prefix=emb.query_prefix,
        passage_prefix=emb.passage_prefix,
    )


def build_embedders(settings: Settings, default: Embedder) -> EmbedderRegistry:
    """The default embedder plus model folders that collections were rebuilt with."""
    return EmbedderRegistry(default, lambda path: _local_embedder(settings, path))


def _local_embedder(settings: Settings, path: str | None, **model: str) -> Embedder:
    """A model folder on the configured device and backend; exports cached in
    GROUNDED_EMBEDDING__CACHE_DIR, else `<home>/cache`."""
    emb = settings.embedding
    return SentenceTransformerEmbedder(
        path,
        device=emb.device,
        batch_size=emb.batch_size,
        backend=emb.backend.value,
        cache_dir=Path(emb.cache_dir) if emb.cache_dir else settings.home / "cache",
        **model,
    )


def build_chat_model(settings: Settings) -> ChatModel:
    """The configured LLM backend behind a bounded queue shared by all requests."""
    cfg = settings.llm
    inner: ChatModel
    if cfg.backend is LLMBackend.OPENAI:
        from llm.openai_backend import OpenAICompatChatModel

        if not cfg.base_url:
            raise ValueError("GROUNDED_LLM__BASE_URL is required with GROUNDED_LLM__BACKEND=openai")
        inner = OpenAICompatChatModel(
            cfg.base_url,
            model=cfg.api_model or "default",
            api_key=cfg.api_key or None,
            timeout_s=cfg.timeout_s,
            context_window=cfg.context_window or 8192,
        )
    else:  # the setting is an enum: nothing else gets this far
        from llm.transformers_backend import TransformersChatModel

        inner = TransformersChatModel(
            cfg.model_path or None,
            gguf_file=cfg.gguf_file or None,
            device=cfg.device,
            context_window=cfg.context_window or None,
        )
    return bounded_chat_model(settings, inner)


def bounded_chat_model(settings: Settings, inner: ChatModel) -> ChatModel:
    """`inner` behind the configured queue: slots, waiting places and the longest wait."""
    from llm.queue import BoundedChatModel

    cfg = settings.llm
    return BoundedChatModel(
        inner,
        max_concurrent=cfg.max_concurrent,
        max_waiting=cfg.max_waiting,
        max_wait_s=cfg.max_queue_wait_s or None,
    )


def build_container(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    chat_model: ChatModel | None = None,
    with_llm: bool = False,
) -> Container:
    """Build every component; tests pass prebuilt models to avoid reloading them."""
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    gpu = settings.faiss_gpu
    use_gpu = gpu is FaissGpu.ON or (gpu is FaissGpu.AUTO and gpu_available())
    if settings.retrieval.faiss_threads > 0:
        set_faiss_threads(settings.retrieval.faiss_threads)
    embedder = embedder or build_embedder(settings)
    embedders = build_embedders(settings, embedder)
    indexes = IndexStore(
        settings.index_dir,
        use_gpu=use_gpu,
        policy=IndexPolicy(
            exact_max=settings.retrieval.exact_max_chunks,
            target_recall=settings.retrieval.ivf_target_recall,
        ),
    )
    lexical = LexicalStore(settings.lexical_dir)
    reranker = build_reranker(settings)
    return Container(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        embedder=embedder,
        embedders=embedders,
        indexes=indexes,
        lexical=lexical,
        blobs=BlobStore(settings.originals_dir),
        retriever=build_retriever(settings, indexes, embedders, lexical, reranker),
        viewer=build_viewer(settings),
        chat_model=chat_model or (build_chat_model(settings) if with_llm else None),
        reranker=reranker,
    )


def build_viewer(settings: Settings) -> SourceViewer:
    """The source view's PDFium runner, limited by GROUNDED_VIEWER__*."""
    cfg = settings.viewer
    return SourceViewer(
        ViewerConfig(
            timeout_s=cfg.timeout_s,
            memory_limit_mb=cfg.memory_mb or None,
            max_concurrent=cfg.max_concurrent,
        )
    )


def build_retriever(
    settings: Settings,
    indexes: IndexStore,
    embedders: EmbedderRegistry,
    lexical: LexicalStore,
    reranker: Reranker | None,
) -> Retriever:
    """The one Retriever, configured by GROUNDED_RETRIEVAL__* and GROUNDED_RERANK__TOP_N."""
    cfg = settings.retrieval
    config = RetrieverConfig(
        mode=cfg.mode,
        fusion=Fusion(cfg.dense_weight, cfg.rrf_k),
        rerank_top_n=settings.rerank.top_n,
    )
    return Retriever(indexes, embedders, lexical, reranker=reranker, config=config)


def build_reranker(settings: Settings) -> Reranker | None:
    """The configured cross-encoder, or None (the default: none ships offline)."""
    cfg = settings.rerank
    if not cfg.model_path:
        return None
    from retrieval.reranker import CrossEncoderReranker

    return CrossEncoderReranker(cfg.model_path, device=cfg.device)
