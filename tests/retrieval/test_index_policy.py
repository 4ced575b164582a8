"""Index kind by size: exact below the threshold, IVF tuned to a measured recall above it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.index_policy import IndexPolicy, build_ivf, nlist_for
from retrieval.vector_index import VectorIndex

DIM = 32


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 50 centres: real embeddings cluster, uniform noise doesn't."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, DIM))
    x = centres[rng.integers(0, 50, n)] + 0.5 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def flat_of(ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
    idx = VectorIndex.empty(DIM)
    idx.apply(ids, vectors, np.zeros(0, np.int64), 1)
    return idx


def recall_at_10(approx: VectorIndex, exact: VectorIndex, queries: np.ndarray) -> float:
    _, got = approx.search(queries, 10)
    _, want = exact.search(queries, 10)
    return float(np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)]))


def test_the_kind_follows_the_size_with_room_against_flip_flopping() -> None:
    policy = IndexPolicy(exact_max=1000)
    assert policy.kind_for(1000) == "flat" and policy.kind_for(1001) == "ivf"
    ids = np.arange(1200, dtype=np.int64)
    flat = flat_of(ids, clustered(1200))
    assert policy.needs_reshape(flat)
    ivf = policy.reshape(flat)
    assert (ivf.kind, ivf.ntotal, ivf.seq) == ("ivf", 1200, 1)
    assert not policy.needs_reshape(ivf)
    # Shrinking just under the threshold keeps IVF; at half of it, exact search returns.
    ivf.apply(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32), ids[:300], 2)
    assert ivf.ntotal == 900 and not policy.needs_reshape(ivf)
    ivf.apply(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32), ids[:700], 3)
    assert policy.needs_reshape(ivf)
    back = policy.reshape(ivf)
    assert back.kind == "flat" and set(back.contents()[0]) == set(ids[700:].tolist())


def test_an_ivf_that_has_grown_fourfold_is_retrained() -> None:
    policy = IndexPolicy(exact_max=500)
    ivf = policy.reshape(flat_of(np.arange(1000), clustered(1000)))
    assert not policy.needs_reshape(ivf)
    more = np.arange(1000, 4000)
    ivf.apply(more, clustered(3000, seed=1), np.zeros(0, np.int64), 2)
    assert policy.needs_reshape(ivf)
    assert policy.reshape(ivf).index.nlist == nlist_for(4000) > ivf.index.nlist


def test_ivf_meets_the_recall_it_was_tuned_for_on_unseen_queries() -> None:
    n = 20_000
    ids = np.arange(10, n + 10, dtype=np.int64)
    data = clustered(n + 300)
    vectors, queries = data[:n], data[n:]  # held-out queries from the same distribution
    ivf = build_ivf(ids, vectors, target_recall=0.95)
    assert ivf.kind == "ivf" and 1 <= ivf.nprobe < ivf.index.nlist  # approximate, not a scan
    assert recall_at_10(ivf, flat_of(ids, vectors), queries) >= 0.93
    # And it is approximate: one list alone misses neighbours that the tuning found.
    ivf.index.nprobe = 1
    assert recall_at_10(ivf, flat_of(ids, vectors), queries) < 0.9


def test_ivf_removes_replaces_filters_and_survives_a_save(tmp_path: Path) -> None:
    ids = np.arange(100, 5100, dtype=np.int64)
    vectors = clustered(5000)
    ivf = build_ivf(ids, vectors, target_recall=0.95)
    ivf.seq = 1
    reader = ivf.copy()
    # Remove 100 and replace 101 with a new vector: nothing duplicated, the old one gone.
    new = clustered(1, seed=3)
    ivf.apply(np.array([101]), new, np.array([100]), 2)
    assert ivf.ntotal == 4999 and ivf.vector(100) is None
    assert np.allclose(ivf.vector(101), new[0])
    _, found = ivf.search(new, 1)
    assert found[0, 0] == 101
    assert reader.ntotal == 5000 and reader.vector(100) is not None  # the copy is untouched
    # A filter is exact on IVF too: the allowed ids are found wherever their lists are.
    allowed = np.array([4000, 5099, 101])
    _, found = ivf.search(vectors[:1], 3, allowed)
    assert set(found[0]) == {4000, 5099, 101}
    ivf.save(tmp_path / "i.faiss", {})
    loaded, _ = VectorIndex.load(tmp_path / "i.faiss")
    assert (loaded.kind, loaded.nprobe, loaded.ntotal, loaded.seq) == ("ivf", ivf.nprobe, 4999, 2)
    assert loaded.vector(100) is None and np.allclose(loaded.vector(101), new[0])


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_contents_lists_every_id_with_its_vector(kind: str) -> None:
    ids = np.arange(7, 2007, dtype=np.int64)
    vectors = clustered(2000)
    idx = flat_of(ids, vectors) if kind == "flat" else build_ivf(ids, vectors, 0.9)
    got_ids, got_vectors = idx.contents()
    order = np.argsort(got_ids)
    assert np.array_equal(got_ids[order], ids)
    assert np.allclose(got_vectors[order], vectors, atol=1e-6)
