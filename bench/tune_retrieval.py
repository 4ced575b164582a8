"""Retrieval tuning by paired differences: chunking, BM25 terms and fusion on one BEIR set.

Uses Grounded's own chunker, tokenizer, bundled embedder and tantivy, outside the service so
that many variants can be compared on the same questions in one run. Variants are chosen
on the calibration half (even positions of the seeded query order, as `grounded eval`
splits them) and reported on the other half, as a difference to the current default with
its standard error over the paired per-question results.

    .venv/bin/python bench/tune_retrieval.py ../shared/eval/covidqa_200423_docs \
        --chunks 254/24,254/63 --langchain --out bench/results/tune_covidqa.json

`--langchain` adds issue 5's LangChain pipeline (bench/langchain_retrieval.py) on the same
questions and makes its hybrid the baseline of the differences.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.chunking import TokenChunker  # noqa: E402
from ingest.parsers.text import parse  # noqa: E402
from retrieval.embedder import SentenceTransformerEmbedder  # noqa: E402
from retrieval.evaluation import Query, Ranked, hit_at, load_beir  # noqa: E402
from retrieval.search import Fusion  # noqa: E402
from retrieval.tokenize import tokenize  # noqa: E402

DEPTH = 30  # candidates per list, as search() fetches for top_k 10
Ranking = list[int]


class Chunked:
    """One chunking of the corpus with its vectors and BM25 index (cached on disk)."""

    def __init__(self, corpus: dict, emb: SentenceTransformerEmbedder, spec: str, cache: Path):
        max_tokens, overlap = (int(x) for x in spec.split("/"))
        chunker = TokenChunker(emb.tokenizer, max_tokens=max_tokens, overlap_tokens=overlap)
        self.rows: list[tuple[str, str]] = []  # (corpus id, chunk text)
        for rid, (title, text) in corpus.items():
            if not (title + text).strip():  # an empty upload is refused, so never indexed
                continue
            doc = parse(f"{title}\n\n{text}\n".encode())  # as `grounded eval` uploads it
            self.rows += [(rid, c.text) for c in chunker.split(doc)]
        texts = [t for _, t in self.rows]
        self.vectors = _cached(cache, texts, lambda: emb.embed_batch(texts, "passage"))
        self._bm25: dict[bool, object] = {}
        self._tmp = tempfile.TemporaryDirectory()

    def bm25(self, english: bool) -> object:
        """A tantivy index over the chunks with the given term rules."""
        import tantivy

        if english not in self._bm25:
            sb = tantivy.SchemaBuilder()
            sb.add_integer_field("row", stored=True, indexed=True)
            sb.add_text_field("body", stored=False, tokenizer_name="whitespace")
            path = Path(self._tmp.name) / str(english)
            path.mkdir()
            index = tantivy.Index(sb.build(), path=str(path))
            writer = index.writer(64 << 20, 1)
            for i, (_, text) in enumerate(self.rows):
                body = " ".join(tokenize(text, english=english))
                writer.add_document(tantivy.Document(row=i, body=body))
            writer.commit()
            writer.wait_merging_threads()
            index.reload()
            self._bm25[english] = index
        return self._bm25[english]

    def lexical(self, queries: Sequence[Query], english: bool) -> list[Ranking]:
        """BM25 rankings as the service builds them (OR of the query's distinct terms)."""
        import tantivy

        index = self.bm25(english)
        schema, searcher = index.schema, index.searcher()  # type: ignore[attr-defined]
        out = []
        for q in queries:
            terms = list(dict.fromkeys(tokenize(q.text, english=english)))
            if not terms:
                out.append([])
                continue
            should = [
                (tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t)) for t in terms
            ]
            hits = searcher.search(tantivy.Query.boolean_query(should), DEPTH).hits
            out.append([int(searcher.doc(a)["row"][0]) for _, a in hits])
        return out

    def dense(self, qvecs: np.ndarray) -> list[Ranking]:
        """Exact cosine rankings."""
        scores = qvecs @ self.vectors.T
        top = np.argsort(-scores, axis=1)[:, :DEPTH]
        return [list(map(int, r)) for r in top]


def _cached(cache: Path, texts: list[str], make: Callable[[], np.ndarray]) -> np.ndarray:
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / (hashlib.sha1("\0".join(texts).encode()).hexdigest()[:20] + ".npy")
    if path.exists():
        return np.load(path)
    vectors = make()
    np.save(path, vectors)
    return vectors


def fuse(dense: Ranking, lexical: Ranking, weight: float, k: int) -> Ranking:
    """Weighted reciprocal-rank fusion, as retrieval.search does it."""
    score = Fusion(weight, k).scores(dense, lexical)
    return sorted(score, key=lambda c: -score[c])


def hits(
    rows: list[tuple[str, str]], queries: Sequence[Query], rankings: list[Ranking]
) -> np.ndarray:
    """Per-question hit@5 (0/1) by the answer-string rule of `grounded eval`."""
    return np.asarray(
        [
            hit_at(q, [Ranked(*rows[c]) for c in ranking], 5)
            for q, ranking in zip(queries, rankings, strict=True)
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--chunks", default="254/24", help="max_tokens/overlap, comma-separated")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "grounded-tune")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--langchain", action="store_true", help="add the LangChain baseline")
    args = ap.parse_args(argv)

    corpus, queries = load_beir(args.folder)
    queries = [q for q in queries if q.relevant]
    queries = random.Random(0).sample(queries, min(args.limit or len(queries), len(queries)))
    emb = SentenceTransformerEmbedder(device="cpu")
    qvecs = emb.embed_batch([q.text for q in queries], "query")
    rows: dict[str, np.ndarray] = {}
    for spec in args.chunks.split(","):
        chunked = Chunked(corpus, emb, spec, args.cache)
        dense = chunked.dense(qvecs)
        rows[f"{spec} dense"] = hits(chunked.rows, queries, dense)
        for english in (False, True):
            terms = "stemmed" if english else "plain"
            lexical = chunked.lexical(queries, english)
            rows[f"{spec} bm25 {terms}"] = hits(chunked.rows, queries, lexical)
            for weight in (1.0, 0.5, 0.25):
                for k in (60, 10):
                    fused = [fuse(d, x, weight, k) for d, x in zip(dense, lexical, strict=True)]
                    rows[f"{spec} hybrid {terms} w={weight:g} k={k}"] = hits(
                        chunked.rows, queries, fused
                    )
    if args.langchain:
        from langchain_retrieval import langchain_rankings  # bench/, beside this script

        lc_rows, ranked = langchain_rankings(
            corpus,
            queries,
            lambda ts: _cached(args.cache, ts, lambda: emb.embed_batch(ts, "passage")),
            lambda ts: emb.embed_batch(ts, "query"),
            args.cache,
        )
        for name, rankings in ranked.items():
            rows[f"LangChain {name}"] = hits(lc_rows, queries, rankings)
    first = args.chunks.split(",")[0]
    base_key = "LangChain hybrid" if args.langchain else f"{first} hybrid plain w=0.25 k=60"
    report = table(args.folder.name, rows, base_key)
    print(report["markdown"])
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


def table(name: str, rows: dict[str, np.ndarray], base_key: str) -> dict:
    """Calibration and report hit@5 per variant, and the paired difference to `base_key`."""
    cal, rep = slice(0, None, 2), slice(1, None, 2)
    base = rows[base_key]
    lines = [
        f"{name}: {len(base)} questions; difference = variant − `{base_key}` on the report half",
        "",
        "| variant | calibration hit@5 | report hit@5 | report difference ± SE |",
        "|---|---|---|---|",
    ]
    out: dict = {"set": name, "baseline": base_key, "questions": len(base), "variants": {}}
    for key, h in sorted(rows.items(), key=lambda kv: -kv[1][cal].mean()):
        d = h[rep] - base[rep]
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0
        out["variants"][key] = {
            "calibration": float(h[cal].mean()),
            "report": float(h[rep].mean()),
            "difference": float(d.mean()),
            "se": se,
        }
        cells = f"{h[cal].mean():.3f} | {h[rep].mean():.3f} | {d.mean():+.3f} ± {se:.3f}"
        lines.append(f"| {key} | {cells} |")
    out["markdown"] = "\n".join(lines)
    return out


if __name__ == "__main__":
    main()
