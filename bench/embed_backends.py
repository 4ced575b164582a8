"""Embedding backends side by side: torch fp32 vs int8 ONNX, speed and closeness.

    .venv/bin/python bench/embed_backends.py [--corpus ../shared/eval/covidqa_200423_docs]
        [--chunks 256] [--reps 3]

Chunks the corpus with Grounded's chunker (the sizes ingest embeds), then embeds the same
chunks with each backend, alternating, `--reps` times; the best time of each counts.
Reports chunks/s, the speed ratio and the cosine of the int8 vectors to torch's. What
this does to retrieval is measured by `grounded eval` (README, "Benchmarks"). Prints a
Markdown table and writes bench/results/embed_backends.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.chunking import TokenChunker  # noqa: E402
from ingest.parsers.text import parse  # noqa: E402
from retrieval.embedder import SentenceTransformerEmbedder  # noqa: E402


def load_chunks(corpus: Path, n: int, emb: SentenceTransformerEmbedder) -> list[str]:
    """The first `n` chunks of the corpus, as ingest cuts them."""
    chunker = TokenChunker(emb.tokenizer, max_tokens=emb.max_tokens, overlap_tokens=24)
    texts: list[str] = []
    with (corpus / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            doc = parse(f"{rec.get('title', '')}\n\n{rec['text']}\n".encode())
            texts += [c.text for c in chunker.split(doc)]
            if len(texts) >= n:
                break
    return texts[:n]


def main() -> None:
    """Run the comparison and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/eval/covidqa_200423_docs")
    ap.add_argument("--chunks", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        fp32 = SentenceTransformerEmbedder(device="cpu", backend="torch")
        t_fp32 = time.perf_counter() - t
        t = time.perf_counter()
        int8 = SentenceTransformerEmbedder(device="cpu", backend="onnx-int8", cache_dir=Path(cache))
        t_int8 = time.perf_counter() - t  # includes exporting and quantizing once
        texts = load_chunks(args.corpus, args.chunks, fp32)
        backends = {"torch fp32": fp32, "onnx int8": int8}
        best = dict.fromkeys(backends, float("inf"))
        vectors: dict[str, np.ndarray] = {}
        for emb in backends.values():  # warm-up
            emb.embed_batch(texts[:16], "passage")
        for _ in range(args.reps):
            for name, emb in backends.items():
                t = time.perf_counter()
                vectors[name] = emb.embed_batch(texts, "passage")
                best[name] = min(best[name], time.perf_counter() - t)
    cos = (vectors["onnx int8"] * vectors["torch fp32"]).sum(axis=1)
    rows = []
    for name, load_s in (("torch fp32", t_fp32), ("onnx int8", t_int8)):
        rows.append(
            {
                "backend": name,
                "chunks": len(texts),
                "best_s": round(best[name], 2),
                "chunks_per_s": round(len(texts) / best[name], 1),
                "speedup": round(best["torch fp32"] / best[name], 2),
                "load_s": round(load_s, 1),
            }
        )
    result = {
        "corpus": args.corpus.name,
        "reps": args.reps,
        "rows": rows,
        "cosine_to_fp32": {
            "mean": round(float(cos.mean()), 4),
            "p1": round(float(np.percentile(cos, 1)), 4),
            "min": round(float(cos.min()), 4),
        },
        "machine": f"{platform.machine()} {platform.node()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "embed_backends.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| backend | chunks | best s | chunks/s | speed-up | load s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['chunks']} | {r['best_s']} | {r['chunks_per_s']} "
            f"| {r['speedup']}x | {r['load_s']} |"
        )
    c = result["cosine_to_fp32"]
    print(f"\nint8 vs fp32 cosine: mean {c['mean']}, 1st percentile {c['p1']}, min {c['min']}")


if __name__ == "__main__":
    main()
