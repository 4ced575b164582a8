"""`grounded eval`: ingest a labelled BEIR set through the real pipeline, score retrieval."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from api.container import Container
from api.ingest_cli import process_queue
from data.errors import ConflictError
from data.models import Chunk, Collection
from data.scope import Scope
from data.types import RetrievalMode
from ingest.collections import request_collection_delete
from ingest.uploads import accept_upload, clean_filename
from retrieval.evaluation import Query, Ranked, load_beir, summarize
from retrieval.search import Fusion

_ADMIN = Scope.everything()  # eval makes and drops its own collection


def parse_mode(mode: str) -> dict[str, Any]:
    """The Retriever config changes for a mode: "dense"; "hybrid" (the server's fusion) or
    "hybrid@W[:K]" (dense weight W, RRF constant K). ValueError for anything else."""
    if mode == "dense":
        return {"mode": RetrievalMode.DENSE}
    if mode == "hybrid":
        return {"mode": RetrievalMode.HYBRID}
    if not mode.startswith("hybrid@"):
        raise ValueError(f"unknown retrieval mode {mode!r}")
    return {"mode": RetrievalMode.HYBRID, "fusion": Fusion.parse(mode.split("@", 1)[1])}


def run_eval(
    container: Container,
    folder: Path | Sequence[Path],
    *,
    collection: str | None = None,
    ks: Sequence[int] = (1, 5, 10),
    limit: int | None = None,
    seed: int = 0,
    out_dir: Path | None = None,
    keep: bool = False,
    modes: Sequence[str] = ("dense", "hybrid"),
) -> dict[str, Any]:
    """Ingest the corpus of `folder` (or of several, merged into one collection), run the
    queries, return the report. Merged sets are scored each on its own questions, with the
    other sets' documents as distractors; `limit` samples each set."""
    folders = [folder] if isinstance(folder, Path) else list(folder)
    sets = _load(folders, limit, seed)
    corpus = {rid: doc for c, _ in sets.values() for rid, doc in c.items()}
    name = collection or f"eval-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    names = _ingest(container, name, corpus)
    ingest_s = time.perf_counter() - start
    try:
        chunks = _chunk_count(container, name)
        per_set = {
            set_name: {
                "documents": len(c),
                "modes": {m: _score(container, name, names, qs, ks, m) for m in modes},
            }
            for set_name, (c, qs) in sets.items()
        }
    finally:
        if not keep:
            _drop(container, name)
    report: dict[str, Any] = {
        "set": "+".join(sets),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "embedding_model": container.embedder.model_id,
        "embedding_backend": str(getattr(container.embedder, "backend", "")),
        "documents": len(corpus),
        "chunks": chunks,
        "ingest_seconds": round(ingest_s, 1),
        "k": list(ks),
        "query_sample": {"limit": limit, "seed": seed},
        "modes": next(iter(per_set.values()))["modes"],
    }
    if len(sets) > 1:
        report["sets"] = per_set
        del report["modes"]
    if out_dir is not None:
        _write(report, out_dir)
    return report


def _load(
    folders: Sequence[Path], limit: int | None, seed: int
) -> dict[str, tuple[dict[str, tuple[str, str]], list[Query]]]:
    """Each set's corpus and seeded query sample; ids get the set's name when merging."""
    out = {}
    for folder in folders:
        corpus, queries = load_beir(folder)
        queries = random.Random(seed).sample(queries, min(limit or len(queries), len(queries)))
        if len(folders) > 1:  # ids are only unique within a set
            p = f"{folder.name}-"
            corpus = {p + rid: doc for rid, doc in corpus.items()}
            queries = [
                replace(q, id=p + q.id, relevant={p + d: g for d, g in q.relevant.items()})
                for q in queries
            ]
        if folder.name in out:
            raise ValueError(f"two sets are named {folder.name!r}")
        out[folder.name] = (corpus, queries)
    return out


def _ingest(container: Container, name: str, corpus: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Upload each record as a .txt document; returns {document filename: corpus id}."""
    names: dict[str, str] = {}
    ids: list[int] = []
    with container.sessions() as s:
        if s.scalar(select(Collection.id).where(Collection.name == name)) is not None:
            raise ConflictError(f"collection {name!r} exists; eval needs a new one")
        s.add(Collection(name=name, description="grounded eval (temporary)"))
        s.commit()
        for rid, (title, text) in corpus.items():
            filename = clean_filename(f"{rid}.txt")
            names[filename] = rid
            staged = container.blobs.stage([f"{title}\n\n{text}\n".encode()], max_bytes=1 << 30)
            out = accept_upload(
                s,
                container.blobs,
                staged,
                collection=name,
                filename=filename,
                embedders=container.embedders,
                scope=_ADMIN,
            )
            ids.append(out.document.id)
    process_queue(container, ids)
    return names


def _chunk_count(container: Container, name: str) -> int:
    with container.sessions() as s:
        q = (
            select(func.count())
            .select_from(Chunk)
            .join(Collection, Collection.id == Chunk.collection_id)
            .where(Collection.name == name, Chunk.generation == Collection.generation)
        )
        return int(s.scalar(q) or 0)


def _score(
    container: Container,
    name: str,
    names: dict[str, str],
    queries: list[Query],
    ks: Sequence[int],
    mode: str,
) -> dict[str, Any]:
    """Every query through the container's Retriever, with the mode under test."""
    depth = max([*ks, 10])
    retriever = container.retriever.with_config(**parse_mode(mode))
    results: list[list[Ranked]] = []
    latencies: list[float] = []
    with container.sessions() as s:
        for q in queries:
            t0 = time.perf_counter()
            hits = retriever.search(s, q.text, scope=_ADMIN, collections=[name], top_k=depth)
            latencies.append((time.perf_counter() - t0) * 1000)
            results.append([Ranked(names.get(h.filename, h.filename), h.text) for h in hits])
    out: dict[str, Any] = dict(summarize(queries, results, latencies, ks))
    # Two fixed halves (alternate queries of the seeded order): tune on one, report the other.
    for half, sl in (("calibration", slice(0, None, 2)), ("report", slice(1, None, 2))):
        out[half] = summarize(queries[sl], results[sl], latencies[sl], ks)
    return out


def _drop(container: Container, name: str) -> None:
    with container.sessions() as s:
        _coll, job = request_collection_delete(s, name, scope=_ADMIN)
    process_queue(container, [])  # the worker (ours or the service's) empties it


def _write(report: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{report['set']}-{report['date'].replace(':', '')}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(report) + "\n")


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table, one row per set and retrieval mode."""
    ks = report["k"]
    sets = report.get("sets") or {report["set"]: {"modes": report["modes"]}}
    rows = [(n, mode, m) for n, v in sets.items() for mode, m in v["modes"].items()]
    graded = any(m["graded"] for _, _, m in rows)
    cols = [f"hit@{k}" for k in ks] + [f"recall@{k}" for k in ks] + ["mrr@10"]
    cols += ["ndcg@10"] if graded else []
    head = ["set", "mode", "queries", *cols, "p50 ms", "p95 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for set_name, mode, m in rows:
        row = [set_name, mode, str(m["queries"]), *(f"{m[c]:.3f}" for c in cols)]
        row += [f"{m['latency_p50_ms']:.1f}", f"{m['latency_p95_ms']:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
