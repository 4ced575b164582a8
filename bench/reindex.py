"""Re-index time of a watched folder: first sync, unchanged, all touched, one file changed.

    .venv/bin/python bench/reindex.py [--corpus ../shared/eval/cranfield] [--files 1000]

Writes one .txt per corpus record into a folder (nested 10 per sub-folder), registers it as
a source, and times each sync through the real worker (scan, hash, sandboxed parse,
chunking, embedding, SQL, FAISS checkpoint). Prints a Markdown table and writes
bench/results/reindex.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.container import build_container  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.worker import Worker  # noqa: E402
from data.migrate import upgrade  # noqa: E402
from data.models import Collection, Job  # noqa: E402
from ingest.sources import SourceSpec, create_source, request_reindex  # noqa: E402

COUNTERS = ("files_seen", "added", "changed", "renamed", "deleted", "unchanged", "chunks_embedded")


def write_folder(corpus: Path, out: Path, n: int) -> int:
    """n files from the corpus (synthetic text when it is absent); returns characters."""
    records: list[str] = []
    if (corpus / "corpus.jsonl").exists():
        with (corpus / "corpus.jsonl").open(encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                records.append(f"{rec.get('title', '')}\n\n{rec['text']}\n")
    records = records or [f"Record {i}: the pump {i % 7} needs service.\n" for i in range(n)]
    chars = 0
    for i in range(n):
        text = records[i % len(records)] + f"\n(file {i})\n"  # unique bytes per file
        path = out / f"part-{i // 10:03d}" / f"doc-{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        chars += len(text)
    return chars


def timed_sync(worker: Worker, container, coll: Collection, job_id: int | None) -> dict:  # type: ignore[no-untyped-def]
    """Queue (unless given) and run one reindex job; its wall time and counters."""
    with container.sessions() as s:
        if job_id is None:
            job_id = request_reindex(s, s.get(Collection, coll.id), None).id
    start = time.perf_counter()
    worker.run_until_idle()
    took = time.perf_counter() - start
    with container.sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == "succeeded", job.error if job else job_id
        progress = dict(job.progress)
    return {"seconds": round(took, 3), **{k: progress.get(k, 0) for k in COUNTERS}}


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time."""
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def main() -> None:
    """Run the four syncs and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/eval/cranfield")
    ap.add_argument("--files", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "roots" / "share"
        folder.mkdir(parents=True)
        chars = write_folder(args.corpus, folder, args.files)
        settings = Settings(home=Path(tmp) / "home", source_roots=str(folder.parent))  # type: ignore[call-arg]
        settings.home.mkdir()
        upgrade(settings.db_url)
        container = build_container(settings)
        worker = Worker(container)
        with container.sessions() as s:
            coll = s.query(Collection).filter_by(name="default").one()
            _src, job = create_source(
                s,
                coll,
                SourceSpec(path=str(folder)),
                settings.source_root_paths,
                datetime.now(UTC),
            )
            first_job = job.id
        rows = {"first sync": timed_sync(worker, container, coll, first_job)}
        # The quick cases are sub-second: report the median of three runs each.
        rows["unchanged"] = median_run(
            [timed_sync(worker, container, coll, None) for _ in range(3)]
        )
        runs = []
        for k in range(3):
            now = time.time_ns() + k * 1_000_000_000
            for p in folder.rglob("*.txt"):  # same bytes, new mtime: every file is hashed
                os.utime(p, ns=(now, now))
            runs.append(timed_sync(worker, container, coll, None))
        rows["all touched"] = median_run(runs)
        runs = []
        for k in range(3):
            target = sorted(folder.rglob("*.txt"))[(k * 337) % args.files]
            target.write_text(target.read_text() + f"\nAppendix {k}: one more sentence.\n")
            runs.append(timed_sync(worker, container, coll, None))
        rows["1 file changed"] = median_run(runs)
        container.close()
    print(
        f"\n{args.files} files, {chars / 1e6:.2f} M characters, {platform.processor()}"
        f" {os.cpu_count()} cores\n"
    )
    print("| sync | seconds | " + " | ".join(COUNTERS) + " |")
    print("|---" * (len(COUNTERS) + 2) + "|")
    for name, r in rows.items():
        print(f"| {name} | {r['seconds']:.2f} | " + " | ".join(str(r[k]) for k in COUNTERS) + " |")
    out = ROOT / "bench/results/reindex.json"
    meta = {"files": args.files, "characters": chars, "date": datetime.now(UTC).isoformat()}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
