"""Retrieval evaluation on BEIR-format sets: loading, and the metrics `grounded eval` prints.

A BEIR folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`,
optional `answers`) and `qrels/test.tsv` (`query-id  corpus-id  score`, with a header).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Query:
    """A labelled question: relevant documents (id → grade) and answer strings."""

    id: str
    text: str
    answers: tuple[str, ...] = ()
    relevant: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Ranked:
    """One retrieved chunk as the metrics see it: which document, and its text."""

    doc_id: str
    text: str


def load_beir(folder: Path) -> tuple[dict[str, tuple[str, str]], list[Query]]:
    """({doc id: (title, text)}, queries with their qrels and answers)."""
    corpus = {
        str(r["_id"]): (r.get("title") or "", r["text"]) for r in _jsonl(folder / "corpus.jsonl")
    }
    qrels: dict[str, dict[str, int]] = {}
    path = folder / "qrels" / "test.tsv"
    if path.exists():
        with path.open(encoding="utf-8", newline="") as f:
            rows = csv.reader(f, delimiter="\t")
            next(rows, None)  # header
            for row in rows:
                if len(row) >= 2:
                    grade = int(float(row[2])) if len(row) > 2 and row[2].strip() else 1
                    qrels.setdefault(row[0], {})[row[1]] = grade
    queries = [
        Query(
            id=str(r["_id"]),
            text=r["text"],
            answers=tuple(a for a in r.get("answers") or [] if a),
            relevant={d: g for d, g in qrels.get(str(r["_id"]), {}).items() if g > 0},
        )
        for r in _jsonl(folder / "queries.jsonl")
    ]
    return corpus, queries


def _jsonl(path: Path) -> Iterable[dict]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def is_hit(q: Query, r: Ranked) -> bool:
    """A chunk answers `q` if it comes from a relevant document and holds an answer string.

    Without answer strings, coming from a relevant document is enough.
    """
    if q.relevant and r.doc_id not in q.relevant:
        return False
    if not q.answers:
        return bool(q.relevant)
    return any(a in r.text for a in q.answers)


def hit_at(q: Query, ranked: Sequence[Ranked], k: int) -> float:
    """1.0 if one of the top `k` chunks answers the question."""
    return float(any(is_hit(q, r) for r in ranked[:k]))


def _docs(ranked: Sequence[Ranked], k: int) -> list[str]:
    """Distinct documents in rank order among the top `k` chunks."""
    return list(dict.fromkeys(r.doc_id for r in ranked[:k]))


def recall_at(q: Query, ranked: Sequence[Ranked], k: int) -> float:
    """Share of the relevant documents found in the top `k` chunks."""
    found = set(_docs(ranked, k)) & set(q.relevant)
    return len(found) / len(q.relevant)


def mrr_at(q: Query, ranked: Sequence[Ranked], k: int = 10) -> float:
    """1 / rank of the first relevant document among the top `k` chunks' documents."""
    for rank, d in enumerate(_docs(ranked, k), 1):
        if d in q.relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at(q: Query, ranked: Sequence[Ranked], k: int = 10) -> float:
    """nDCG over documents (first occurrence), with the qrels' grades as gains."""
    docs = _docs(ranked, k)[:k]
    dcg = sum(q.relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(docs))
    ideal = sorted(q.relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    xs = sorted(values)
    pos = (len(xs) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(
    queries: Sequence[Query],
    results: Sequence[Sequence[Ranked]],
    latencies_ms: Sequence[float],
    ks: Sequence[int],
) -> dict[str, float | int | bool]:
    """Mean metrics over the answerable queries (those with qrels), plus latency."""
    pairs = [(q, r) for q, r in zip(queries, results, strict=True) if q.relevant]
    n = len(pairs)
    out: dict[str, float | int | bool] = {"queries": n, "unlabelled": len(queries) - n}
    for k in ks:
        out[f"hit@{k}"] = sum(hit_at(q, r, k) for q, r in pairs) / n if n else 0.0
        out[f"recall@{k}"] = sum(recall_at(q, r, k) for q, r in pairs) / n if n else 0.0
    out["mrr@10"] = sum(mrr_at(q, r) for q, r in pairs) / n if n else 0.0
    out["graded"] = any(g > 1 for q, _ in pairs for g in q.relevant.values())
    out["ndcg@10"] = sum(ndcg_at(q, r) for q, r in pairs) / n if n else 0.0
    out["latency_p50_ms"] = percentile(latencies_ms, 50)
    out["latency_p95_ms"] = percentile(latencies_ms, 95)
    return out
