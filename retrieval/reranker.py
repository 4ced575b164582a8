"""Optional cross-encoder reranking from a local model folder (none ships offline)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.embedder import resolve_device

log = logging.getLogger(__name__)


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder loaded from a folder, never from a hub."""

    def __init__(self, model_path: str | Path, *, device: str = "auto", batch_size: int = 32):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import CrossEncoder

        path = Path(model_path)
        if not path.is_dir():
            raise FileNotFoundError(f"reranker model folder not found: {path}")
        self._model = CrossEncoder(str(path), device=resolve_device(device), local_files_only=True)
        self.model_id = path.name
        self.batch_size = batch_size
        log.info("reranker %s loaded", self.model_id)

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Relevance of each passage to `query`."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        pairs = [(query, p) for p in passages]
        scores = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32).reshape(-1)
