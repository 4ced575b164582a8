"""Ingest throughput, files → searchable: Grounded's real pipeline beside LangChain's.

    .venv/bin/python bench/ingest.py [--corpus ../shared/eval/covidqa_200423_docs] [--limit N]
        [--no-langchain]

Writes each corpus record as a .txt file. Then, in one run on the same files and the same
embedding model: the LangChain tutorial pipeline (bench/langchain_ingest.py, in its own
process), and Grounded's upload staging + worker (parse in a subprocess, token chunking,
embedding, one SQL commit per document, FAISS checkpoint, BM25). Model loading is timed
apart for both. Prints a Markdown table with the wall-time ratio; writes
bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from api.container import build_container  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.worker import Worker  # noqa: E402
from data.migrate import upgrade  # noqa: E402
from data.models import Chunk, Document  # noqa: E402
from data.scope import Scope  # noqa: E402
from ingest.uploads import accept_upload  # noqa: E402


def write_corpus(corpus: Path, out: Path, limit: int | None) -> tuple[int, int]:
    """One .txt per record (title + text); returns (files, characters)."""
    n = chars = 0
    with (corpus / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            text = f"{rec.get('title', '')}\n\n{rec['text']}\n"
            (out / f"{rec['_id']}.txt").write_text(text, encoding="utf-8")
            n += 1
            chars += len(text)
            if limit and n >= limit:
                break
    return n, chars


def main() -> None:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/eval/covidqa_200423_docs")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--no-langchain", action="store_true", help="time Grounded alone")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files_dir = Path(tmp) / "files"
        files_dir.mkdir()
        n_files, n_chars = write_corpus(args.corpus, files_dir, args.limit)
        baseline = None if args.no_langchain else langchain(files_dir)
        settings = Settings(home=Path(tmp) / "home")  # type: ignore[call-arg]
        settings.home.mkdir()
        upgrade(settings.db_url)
        t_load = time.perf_counter()
        container = build_container(settings)
        load_s = time.perf_counter() - t_load  # with the int8 export on a fresh home
        backend = str(getattr(container.embedder, "backend", "torch"))
        start = time.perf_counter()
        with container.sessions() as s:
            for path in sorted(files_dir.iterdir()):
                staged = container.blobs.stage([path.read_bytes()], max_bytes=1 << 30)
                accept_upload(
                    s,
                    container.blobs,
                    staged,
                    collection="default",
                    filename=path.name,
                    embedders=container.embedders,
                    scope=Scope.everything(),
                )
        Worker(container).run_until_idle()
        wall = time.perf_counter() - start
        with container.sessions() as s:
            chunks = s.scalar(select(func.count()).select_from(Chunk)) or 0
            indexed = (
                s.scalar(
                    select(func.count()).select_from(Document).where(Document.status == "indexed")
                )
                or 0
            )
        container.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "corpus": str(args.corpus.name),
        "documents": n_files,
        "indexed": indexed,
        "characters": n_chars,
        "chunks": chunks,
        "wall_s": round(wall, 2),
        "model_load_s": round(load_s, 2),
        "embedding_backend": backend,
        "docs_per_s": round(n_files / wall, 2),
        "chunks_per_s": round(chunks / wall, 1),
        "chars_per_s": round(n_chars / wall),
        "peak_rss_mb": round(rss_mb),
        "machine": f"{platform.machine()} {platform.node()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    if baseline is not None:
        result["langchain"] = baseline
        result["speedup_vs_langchain"] = round(baseline["wall_s"] / wall, 2)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print("| pipeline | docs | chunks | wall s | docs/s | chunks/s | chars/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    rows = [(f"Grounded ({backend} embedding, 254/24 tokens)", result)]
    if baseline is not None:
        rows.insert(0, ("LangChain (1000/200 chars, FAISS.from_documents)", baseline))
    for name, r in rows:
        print(
            f"| {name} | {n_files} | {r['chunks']} | {r['wall_s']:.1f} | "
            f"{n_files / r['wall_s']:.2f} | {r['chunks'] / r['wall_s']:.1f} | "
            f"{n_chars / r['wall_s']:,.0f} | {r['peak_rss_mb']} |"
        )
    if baseline is not None:
        print(f"\nGrounded is {result['speedup_vs_langchain']}x LangChain's speed (wall time).")


def langchain(files_dir: Path) -> dict:
    """The LangChain pipeline on the same files, in its own process (its own RSS)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "langchain_ingest.py"), str(files_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
