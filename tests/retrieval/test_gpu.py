"""The GPU paths: run only where CUDA (and a GPU FAISS build) exist; skipped cleanly otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.vector_index import VectorIndex, gpu_available


def _torch_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.skipif(not gpu_available(), reason="no GPU FAISS build or no GPU")
def test_gpu_replica_returns_the_cpu_results() -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((1000, 64)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    idx = VectorIndex.empty(64)
    idx.apply(np.arange(1000), vecs, np.zeros(0, np.int64), 1)
    cpu_scores, cpu_ids = idx.search(vecs[:10], 5)
    idx.to_gpu()
    gpu_scores, gpu_ids = idx.search(vecs[:10], 5)
    assert (gpu_ids == cpu_ids).all()
    assert np.allclose(gpu_scores, cpu_scores, atol=1e-3)


@pytest.mark.skipif(not _torch_cuda(), reason="no CUDA device for torch")
def test_cuda_embeddings_match_cpu(embedder) -> None:  # type: ignore[no-untyped-def]
    from retrieval.embedder import SentenceTransformerEmbedder

    cuda = SentenceTransformerEmbedder(device="cuda")
    texts = ["A cat sat on the mat.", "Der Hund bellt."]
    cos = (cuda.embed_batch(texts, "passage") * embedder.embed_batch(texts, "passage")).sum(1)
    assert (cos > 0.99).all()


def test_auto_device_is_cpu_without_cuda() -> None:
    from retrieval.embedder import resolve_device

    assert resolve_device("auto") == ("cuda" if _torch_cuda() else "cpu")
    assert resolve_device("cpu") == "cpu"
