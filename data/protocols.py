"""Protocols shared across packages (implemented in retrieval/, used by ingest/ and api/)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    import tokenizers

Kind = Literal["query", "passage"]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; exposes its identity."""

    model_id: str
    dim: int
    max_tokens: int  # tokens a passage may have once the prefix is counted

    @property
    def tokenizer(self) -> tokenizers.Tokenizer:
        """The model's own tokenizer, for sizing chunks."""
        ...

    def count_tokens(self, text: str) -> int:
        """Word pieces of `text`, without special tokens or padding."""
        ...

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Vectors (n × dim, float32, unit length) for `texts`."""
        ...


class Embedders(Protocol):
    """The embedders a process can use: the configured default and local model folders."""

    @property
    def default(self) -> Embedder:
        """The configured model, used by collections that record no model folder."""
        ...

    def load(self, path: str | None) -> Embedder:
        """The model in folder `path` (loaded once), or the default for None."""
        ...

    def for_collection(self, model_id: str | None, path: str | None) -> Embedder:
        """The model a collection's vectors were made with, or EmbedderMismatchError."""
        ...


class Reranker(Protocol):
    """Scores (query, passage) pairs jointly; higher is more relevant (any scale)."""

    model_id: str

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """One score per passage."""
        ...
