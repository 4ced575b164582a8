"""Which FAISS index a collection gets: exact while that is fast, IVF beyond, tuned by recall."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import faiss
import numpy as np

from retrieval.vector_index import VectorIndex

log = logging.getLogger(__name__)

_PROBE_QUERIES = 256  # probes (mixes of two stored vectors) when tuning nprobe
_TRAIN_PER_LIST = 64  # k-means sample: this many vectors per list (FAISS warns below 39)


@dataclass(frozen=True)
class IndexPolicy:
    """Flat up to `exact_max` vectors; above, IVF with `nprobe` set by measured recall@10."""

    exact_max: int = 100_000
    target_recall: float = 0.95
    regrow: float = 4.0  # an IVF is retrained once it holds this many times its training size

    def kind_for(self, n: int) -> str:
        """The index kind a collection of `n` vectors should have."""
        return "ivf" if n > self.exact_max else "flat"

    def needs_reshape(self, idx: VectorIndex) -> bool:
        """True when `idx` is the wrong kind for its size, or an IVF it has outgrown."""
        want = self.kind_for(idx.ntotal)
        if want == "ivf" and idx.kind == "flat":
            return True
        # Back to exact only well below the threshold, so sizes near it don't flip-flop.
        if idx.kind == "ivf" and idx.ntotal <= self.exact_max // 2:
            return True
        return idx.kind == "ivf" and nlist_for(idx.ntotal) >= self.regrow**0.5 * idx.index.nlist

    def reshape(self, idx: VectorIndex, seed: int = 0) -> VectorIndex:
        """A new index of the kind `idx`'s size calls for, with the same contents and seq."""
        ids, vectors = idx.contents()
        if self.kind_for(len(ids)) == "ivf":
            out = build_ivf(ids, vectors, self.target_recall, seed)
        else:
            out = VectorIndex.empty(idx.dim)
            out.index.add_with_ids(vectors, ids)
        out.seq = idx.seq
        return out


def nlist_for(n: int) -> int:
    """Inverted lists for `n` vectors: about 4·√n, with enough vectors to train each."""
    return max(1, min(int(4 * math.sqrt(n)), n // _TRAIN_PER_LIST))


def build_ivf(
    ids: np.ndarray, vectors: np.ndarray, target_recall: float, seed: int = 0
) -> VectorIndex:
    """An IVF-Flat index of `vectors`, its nprobe the smallest measured to reach the recall."""
    n, dim = vectors.shape
    nlist = nlist_for(n)
    rng = np.random.default_rng(seed)
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.spherical = True  # unit vectors: centroids on the sphere
    ivf.cp.min_points_per_centroid = 1  # tiny collections (tests) train one list quietly
    ivf.cp.niter = 10  # nprobe is tuned afterwards; more k-means rounds buy little here
    sample = rng.choice(n, size=min(n, nlist * _TRAIN_PER_LIST), replace=False)
    ivf.train(np.ascontiguousarray(vectors[sample]))
    # A hash-table direct map: remove, replace and reconstruct by id.
    ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
    ivf.add_with_ids(np.ascontiguousarray(vectors), ids.astype(np.int64))
    ivf.nprobe, recall = tune_nprobe(ivf, ids, vectors, target_recall, rng)
    log.info("IVF: %d vectors, nlist %d, nprobe %d, recall@10 %.3f", n, nlist, ivf.nprobe, recall)
    return VectorIndex(dim=dim, index=ivf)


def tune_nprobe(
    ivf: faiss.IndexIVF,
    ids: np.ndarray,
    vectors: np.ndarray,
    target_recall: float,
    rng: np.random.Generator,
) -> tuple[int, float]:
    """Smallest power-of-two nprobe whose recall@10 against exact search reaches the target.

    The probes are normalised sums of two random stored vectors. Stored vectors themselves
    are far too easy (their neighbours share their list: at 100k real chunks, nprobe 1 gave
    0.95 on them and 0.43 on real questions); a two-vector mix sits between topics as real
    questions do and tracked their recall within a few points, slightly below it
    (bench/search.py, README "Benchmarks").
    """
    k = 10
    n = len(ids)
    pairs = rng.integers(0, n, size=(min(n, _PROBE_QUERIES), 2))
    queries = vectors[pairs[:, 0]] + vectors[pairs[:, 1]]
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    truth = [set(row) for row in _exact_top(vectors, ids, queries, k)]
    nprobe, recall = 1, 0.0
    while True:
        ivf.nprobe = nprobe
        _, found = ivf.search(queries, k)
        shares = [len(set(row) & t) / len(t) for row, t in zip(found, truth, strict=True)]
        recall = float(np.mean(shares))
        if recall >= target_recall or nprobe >= ivf.nlist:
            return min(nprobe, ivf.nlist), recall
        nprobe *= 2


def _exact_top(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of the exact top `k` per query, a block of vectors at a time (no second copy)."""
    best_s = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), 65536):
        scores = queries @ vectors[start : start + 65536].T
        rows = np.arange(start, start + scores.shape[1])
        best_s = np.hstack([best_s, scores])
        best_i = np.hstack([best_i, np.broadcast_to(rows, scores.shape)])
        keep = np.argsort(-best_s, axis=1)[:, :k]
        best_s = np.take_along_axis(best_s, keep, axis=1)
        best_i = np.take_along_axis(best_i, keep, axis=1)
    return np.asarray(ids)[best_i]
