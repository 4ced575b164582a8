"""`grounded reindex`: queue a folder sync and follow it with a progress bar."""

from __future__ import annotations

import threading
import time

import typer
from tqdm import tqdm

from api.audit_cli import record_cli
from api.container import Container
from api.worker import Worker
from data.audit import Action
from data.jobs import JobStatus
from data.models import Job
from data.repositories import get_collection
from data.scope import Scope
from ingest.sources import request_reindex

_FINAL = {JobStatus.SUCCEEDED.value, JobStatus.FAILED.value}
_COUNTERS = ("added", "changed", "renamed", "deleted", "unchanged", "skipped", "failed")


def reindex_collection(container: Container, collection: str, source_id: int | None) -> bool:
    """Run the sync here, or watch the service's worker run it; False if anything failed."""
    with container.sessions() as s:
        job_id = request_reindex(
            s, get_collection(s, collection, scope=Scope.everything()), source_id
        ).id
        record_cli(
            container.settings,
            s,
            Action.SOURCE_RUN,
            collection=collection,
            object_id=str(source_id) if source_id else None,
            summary=f"job {job_id}",
        )
    worker = Worker(container)
    runner: threading.Thread | None = None
    if worker.acquire():
        runner = threading.Thread(target=worker.run_until_idle, daemon=True)
        runner.start()
    # Otherwise another worker holds the lease (e.g. `make run`): it does the work, we watch.
    job = _follow(container, job_id, runner)
    if runner is not None:
        runner.join()
    counts = job.progress
    summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in _COUNTERS)
    typer.echo(f"{counts.get('files_seen', 0)} files: {summary}; ", nl=False)
    typer.echo(f"{counts.get('chunks_embedded', 0)} chunks embedded")
    for err in counts.get("errors", []):
        typer.echo(f"{err['file']}: {err['code']}: {err['message']}", err=True)
    if job.error:
        typer.echo(f"job {job_id} failed: {job.error}", err=True)
    return job.status == JobStatus.SUCCEEDED.value and not counts.get("failed")


def _follow(container: Container, job_id: int, runner: threading.Thread | None) -> Job:
    with tqdm(unit="file", desc=f"reindex job {job_id}") as bar:
        while True:
            with container.sessions() as s:
                job = s.get(Job, job_id)
                assert job is not None
                s.expunge(job)
            p = job.progress or {}
            bar.total = p.get("files_seen") or None
            bar.n = int(p.get("files_done", 0))
            bar.set_postfix({k: p[k] for k in _COUNTERS if p.get(k)}, refresh=True)
            if job.status in _FINAL:
                return job
            if runner is not None and not runner.is_alive():
                raise typer.Exit(2)  # our worker died; its log says why
            time.sleep(0.3)
