"""Search latency, QPS and recall@10 of each FAISS index kind Grounded uses, at 10k–1M chunks.

    .venv/bin/python bench/search.py [--sizes 10000,100000,1000000] [--queries 500]

Collections are built from real all-MiniLM-L6-v2 embeddings of the ../shared/eval corpora
(chunked by Grounded's chunker), each copied with small Gaussian noise up to the size, so
the vectors cluster like real ones (uniform random vectors make approximate search look far
worse than it is). Queries are real questions from the same sets, embedded as queries, one
at a time through `VectorIndex.search` as the API calls it. Recall@10 is measured against
exact search on the same vectors. Embeddings and built indexes are cached in --cache, so a
second run only searches. Prints a Markdown table; writes bench/results/search.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tune_retrieval import Chunked  # noqa: E402  (bench/, beside this script)

from api.settings import RetrievalSettings  # noqa: E402
from retrieval.embedder import SentenceTransformerEmbedder  # noqa: E402
from retrieval.evaluation import load_beir  # noqa: E402
from retrieval.index_policy import IndexPolicy  # noqa: E402
from retrieval.vector_index import VectorIndex, set_faiss_threads  # noqa: E402

NOISE = 0.02  # per-dimension sigma: a copy keeps cosine ≈ 0.93 to its original


def real_vectors(eval_dir: Path, cache: Path, limit_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """(chunk vectors, question vectors) of every set under `eval_dir`, cached."""
    path = cache / "real.npz"
    if path.exists():
        data = np.load(path)
        return data["chunks"], data["queries"][:limit_queries]
    emb = SentenceTransformerEmbedder(device="cpu")
    parts, questions = [], []
    for folder in sorted(p for p in eval_dir.iterdir() if (p / "corpus.jsonl").exists()):
        corpus, queries = load_beir(folder)
        print(f"chunking and embedding {folder.name} (cached afterwards)")
        parts.append(Chunked(corpus, emb, f"{emb.max_tokens}/24", cache).vectors)
        questions += [q.text for q in queries]
    rng = np.random.default_rng(0)
    picked = [questions[i] for i in rng.permutation(len(questions))[:2000]]
    chunks = np.vstack(parts)
    qvecs = emb.embed_batch(picked, "query")
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, chunks=chunks, queries=qvecs)
    return chunks, qvecs[:limit_queries]


def grow(base: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` unit vectors: the real ones first, then noisy copies of them."""
    rng = np.random.default_rng(seed)
    picks = np.concatenate(
        [np.arange(min(n, len(base))), rng.integers(0, len(base), n - len(base))]
    )
    out = base[picks[:n]].copy()
    extra = slice(len(base), n)
    out[extra] += rng.normal(0.0, NOISE, size=out[extra].shape).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return np.arange(1, n + 1, dtype=np.int64), out


def built(
    kind: str, n: int, base: np.ndarray, cache: Path, recall: float
) -> tuple[VectorIndex, float]:
    """The index of `kind` over `n` vectors and its build seconds (cached between runs)."""
    tag = hashlib.sha1(base[:64].tobytes()).hexdigest()[:8]
    path = cache / f"{kind}-{n}-{tag}-r{recall}.faiss"
    if path.exists():  # built by an earlier run: report that run's build time
        idx, meta = VectorIndex.load(path)
        return idx, float(meta.get("build_s", 0.0))
    ids, vectors = grow(base, n)
    start = time.perf_counter()
    flat = VectorIndex.empty(base.shape[1])
    flat.index.add_with_ids(vectors, ids)
    idx = IndexPolicy(exact_max=0, target_recall=recall).reshape(flat) if kind == "ivf" else flat
    seconds = time.perf_counter() - start
    idx.save(path, {"bench": True, "build_s": seconds})
    return idx, seconds


def measure(idx: VectorIndex, queries: np.ndarray, truth: np.ndarray | None) -> dict:
    """Latency percentiles, QPS and recall@10 against `truth` (exact ids) when given."""
    times, found = [], []
    for q in queries[:20]:  # warm-up
        idx.search(q[None, :], 10)
    for q in queries:
        t0 = time.perf_counter()
        _, ids = idx.search(q[None, :], 10)
        times.append(time.perf_counter() - t0)
        found.append(ids[0])
    ms = np.asarray(times) * 1000
    out = {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "qps": float(len(ms) / (ms.sum() / 1000)),
        "found": np.asarray(found),
    }
    if truth is not None:
        out["recall@10"] = float(
            np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--recall", type=float, default=IndexPolicy().target_recall)
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "bench-cache")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "search.json")
    args = ap.parse_args()

    ap_threads = RetrievalSettings().faiss_threads
    set_faiss_threads(ap_threads)  # as the service runs it
    base, queries = real_vectors(args.eval_dir, args.cache, args.queries)
    policy = IndexPolicy()
    rows = []
    print(HEAD + "\n|" + "---|" * 9)
    for n in (int(x) for x in args.sizes.split(",")):
        truth = None
        for kind in ("flat", "ivf"):
            idx, build_s = built(kind, n, base, args.cache, args.recall)
            m = measure(idx, queries, truth)
            if kind == "flat":
                truth = m["found"]
                m["recall@10"] = 1.0
            rows.append(
                {
                    "chunks": n,
                    "kind": kind,
                    "default": policy.kind_for(n) == kind,
                    "nprobe": f"{idx.nprobe}/{idx.index.nlist}" if kind == "ivf" else "",
                    "build_s": round(build_s, 1),
                    **{k: round(v, 4) for k, v in m.items() if k != "found"},
                }
            )
            print(_row(rows[-1]), flush=True)
            del idx
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "base_vectors": len(base),
        "queries": len(queries),
        "noise_sigma": NOISE,
        "faiss_threads": ap_threads,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "rows": rows,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\npeak RSS {report['peak_rss_mb']} MB; {len(base)} real chunk vectors as the base")


HEAD = (
    "| chunks | index | Grounded's choice | nprobe/nlist | p50 ms | p95 ms | p99 ms | QPS "
    "| recall@10 |"
)


def _row(r: dict) -> str:
    cells = [
        f"{r['chunks']:,}",
        r["kind"],
        "yes" if r["default"] else "",
        r["nprobe"],
        f"{r['p50_ms']:.2f}",
        f"{r['p95_ms']:.2f}",
        f"{r['p99_ms']:.2f}",
        f"{r['qps']:.0f}",
        f"{r['recall@10']:.3f}",
    ]
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    main()
