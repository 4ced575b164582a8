"""The sentence-transformers embedder with a configured local path and e5-style prefixes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.embedder import SentenceTransformerEmbedder, bundled_model_path


def test_local_path_with_prefixes(embedder) -> None:  # type: ignore[no-untyped-def]
    e5_style = SentenceTransformerEmbedder(
        bundled_model_path(),
        model_id="local/minilm",
        query_prefix="query: ",
        passage_prefix="passage: ",
        device="cpu",
    )
    assert e5_style.model_id == "local/minilm" and e5_style.dim == 384
    # Room for [CLS], [SEP] and the longer prefix ("passage: " = 2 word pieces).
    assert embedder.max_tokens == 254 and e5_style.max_tokens == 252
    texts = ["Aspirin reduces fever."]
    q = e5_style.embed_batch(texts, "query")
    p = e5_style.embed_batch(texts, "passage")
    assert q.shape == (1, 384) and q.dtype == np.float32
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(q, p)  # the prefixes reach the model
    plain = embedder.embed_batch(texts, "query")
    assert np.allclose(plain, embedder.embed_batch(texts, "passage"))  # no prefixes: same
    assert e5_style.embed_batch([], "query").shape == (0, 384)


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="embedding model folder not found"):
        SentenceTransformerEmbedder(tmp_path / "nope", device="cpu")
