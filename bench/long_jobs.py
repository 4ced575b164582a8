"""Long jobs and short ones: how long small uploads wait behind one huge document.

    .venv/bin/python bench/long_jobs.py [--big FILE | --big-chars N] [--small 10]

A real worker (`run_forever`, in a thread) on a fresh state folder. The big document
(default: the shared corpus's 619-page PDF) is uploaded first; once the worker has
started on it, `--small` small text files (a few paragraphs each) are uploaded. Each mode
runs in turn in this process: `fifo` (GROUNDED_WORKER__SMALL_JOB_MB=0, first come first
served: the behaviour before size classes) and `small_first` (the default, 2 MB). Prints
how long each small file took from its upload to `indexed`, when the big one finished,
and the big job's progress as the API shows it, sampled while it ran. Writes
bench/results/long_jobs.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from api.container import build_container  # noqa: E402
from api.settings import Settings  # noqa: E402
from api.worker import Worker  # noqa: E402
from data.migrate import upgrade  # noqa: E402
from data.models import Document, Job  # noqa: E402
from data.scope import Scope  # noqa: E402
from ingest.uploads import accept_upload  # noqa: E402

BIG_PDF = ROOT.parent / "shared/corpus/unstructured-example-docs/pdf/DA-619p.pdf"
PARAGRAPH = (
    "Section {i}. The harbour office opens at eight and closes at five on weekdays. "
    "Permits for small boats are issued on the same day; larger vessels need a week's notice "
    "and a berth plan approved by the harbour master. "
)


def _upload(container: Any, name: str, data: bytes) -> int:
    with container.sessions() as s:
        staged = container.blobs.stage([data], max_bytes=1 << 31)
        out = accept_upload(
            s,
            container.blobs,
            staged,
            collection="default",
            filename=name,
            embedders=container.embedders,
            scope=Scope.everything(),
        )
        return int(out.document.id)


def _state(container: Any, doc_id: int) -> tuple[str, dict[str, Any]]:
    with container.sessions() as s:
        doc = s.get(Document, doc_id)
        assert doc is not None
        job = s.scalars(
            select(Job).where(Job.document_id == doc_id).order_by(Job.id.desc()).limit(1)
        ).first()
        return doc.status, dict(job.progress) if job is not None else {}


def run(
    big_name: str, big: bytes, n_small: int, timeout_s: float, small_job_mb: float
) -> dict[str, Any]:
    """Upload the big document, then the small ones once it runs; time everything."""
    with tempfile.TemporaryDirectory() as tmp:
        worker_settings = {"poll_interval_s": 0.05, "small_job_mb": small_job_mb}
        settings = Settings(home=Path(tmp) / "home", worker=worker_settings)  # type: ignore[call-arg]
        settings.home.mkdir()
        upgrade(settings.db_url)
        container = build_container(settings)
        worker = Worker(container)
        thread = threading.Thread(target=worker.run_forever, daemon=True)
        thread.start()
        t0 = time.perf_counter()
        big_id = _upload(container, big_name, big)
        while _state(container, big_id)[0] == "queued":
            time.sleep(0.05)
        small: dict[int, float] = {}
        for i in range(n_small):
            text = "".join(PARAGRAPH.format(i=f"{i}.{k}") for k in range(6)).encode()
            small[_upload(container, f"small-{i}.txt", text)] = time.perf_counter()
        done: dict[int, float] = {}
        samples: list[dict[str, Any]] = []
        big_done = None
        while time.perf_counter() - t0 < timeout_s:
            now = time.perf_counter()
            for doc_id in small:
                if doc_id not in done and _state(container, doc_id)[0] in ("indexed", "failed"):
                    done[doc_id] = now
            status, progress = _state(container, big_id)
            if status == "processing" and (not samples or now - samples[-1]["t"] >= 2.0):
                samples.append({"t": round(now - t0, 1), **progress})
            if status in ("indexed", "failed") and big_done is None:
                big_done = now
            if big_done is not None and len(done) == len(small):
                break
            time.sleep(0.1)
        worker.stop()
        thread.join(timeout=120)
        with container.sessions() as s:
            big_doc = s.get(Document, big_id)
            assert big_doc is not None
            pages, chunks, status = big_doc.pages, big_doc.chunk_count, big_doc.status
        container.close()
    waits = [done[d] - small[d] for d in done]
    return {
        "big": {
            "file": big_name,
            "bytes": len(big),
            "status": status,
            "pages": pages,
            "chunks": chunks,
            "indexed_after_s": round(big_done - t0, 1) if big_done else None,
        },  # fmt: skip
        "small": {
            "uploaded": n_small,
            "indexed": len(done),
            "median_wait_s": round(statistics.median(waits), 1) if waits else None,
            "max_wait_s": round(max(waits), 1) if waits else None,
            "indexed_before_big": sum(1 for d in done.values() if big_done is None or d < big_done),
        },
        "big_progress_samples": samples,
        "machine": f"{platform.machine()} {platform.node()}",
        "date": time.strftime("%Y-%m-%d"),
    }


MODES = {"fifo": 0.0, "small_first": 2.0}  # GROUNDED_WORKER__SMALL_JOB_MB of each mode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", type=Path, default=BIG_PDF)
    ap.add_argument("--big-chars", type=int, default=0, help="a generated text file instead")
    ap.add_argument("--small", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--modes", default="fifo,small_first", help="comma-separated, in order")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/long_jobs.json")
    args = ap.parse_args()
    if args.big_chars:
        words = (PARAGRAPH.format(i=i) for i in range(args.big_chars // len(PARAGRAPH) + 1))
        name, big = "big.txt", "\n\n".join(words).encode()
    else:
        name, big = args.big.name, args.big.read_bytes()
    results = {}
    for mode in args.modes.split(","):
        results[mode] = run(name, big, args.small, args.timeout, MODES[mode])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("| mode | big document | big indexed after s | small indexed | small wait median / max s"
          " | small before big |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for mode, r in results.items():
        b, sm = r["big"], r["small"]
        doc = f"{b['file']} ({b['pages']} pages, {b['chunks']} chunks)"
        waits = f"{sm['median_wait_s']} / {sm['max_wait_s']}"
        print(f"| {mode} | {doc} | {b['indexed_after_s']} | {sm['indexed']}/{sm['uploaded']} "
              f"| {waits} | {sm['indexed_before_big']} |")  # fmt: skip
    for mode, r in results.items():
        samples = r["big_progress_samples"]
        for sample in samples[:: max(1, len(samples) // 6)]:
            print(f"  {mode} progress", json.dumps(sample))


if __name__ == "__main__":
    main()
