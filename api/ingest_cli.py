"""`grounded ingest`: stage files like the API does, then process them with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import typer
from sqlalchemy import select
from tqdm import tqdm

from api.audit_cli import record_cli
from api.container import Container
from api.worker import Worker
from data.audit import Action, Outcome
from data.errors import DomainError
from data.models import Document
from data.scope import Scope
from data.types import DocumentStatus
from ingest.uploads import accept_upload, clean_filename

_DONE = {DocumentStatus.INDEXED.value, DocumentStatus.FAILED.value}


def _read(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            yield block


def ingest_paths(
    container: Container,
    files: list[tuple[Path, str]],
    *,
    collection: str,
    password: str | None,
    replace: bool,
) -> bool:
    """Queue every file, process the queue, report; False if any file was refused or failed."""
    max_bytes = int(container.settings.ingest.max_upload_mb * 1_000_000)
    queued: list[int] = []
    ok = True
    with container.sessions() as s:
        for path, name in files:
            try:
                staged = container.blobs.stage(_read(path), max_bytes=max_bytes)
                out = accept_upload(
                    s,
                    container.blobs,
                    staged,
                    collection=collection,
                    filename=clean_filename(name),
                    password=password,
                    replace=replace,
                    embedders=container.embedders,
                    scope=Scope.everything(),  # the CLI is the administrator
                )
            except DomainError as exc:
                ok = False
                typer.echo(f"refused {path}: {exc.message}", err=True)
                s.rollback()
                record_cli(
                    container.settings,
                    s,
                    Action.UPLOAD,
                    outcome=Outcome.REJECTED,
                    collection=collection,
                    summary=name,
                )
                continue
            doc = out.document
            record_cli(
                container.settings,
                s,
                Action.UPLOAD,
                collection=collection,
                object_id=str(doc.id),
                summary=doc.filename,
                payload_hash=doc.content_hash,
            )
            if out.queued:
                queued.append(out.document.id)
    process_queue(container, queued)
    return _report(container, queued) and ok


def process_queue(container: Container, ids: list[int], worker: Worker | None = None) -> None:
    """Run the queue here (or watch the service's worker run it) until `ids` are done."""
    worker = worker or Worker(container)
    with tqdm(total=len(ids), unit="doc", desc="indexing") as bar:

        def advance() -> None:
            bar.n = len(ids) - _pending(container, ids)
            bar.refresh()

        if worker.acquire():
            worker.drain(on_job=advance)  # renews the lease during a long job
        # Another worker holds the lease (e.g. `make run`): it does the work, we watch.
        while (left := _pending(container, ids)) > 0:
            bar.n = len(ids) - left
            bar.refresh()
            time.sleep(0.5)
        bar.n = len(ids)
        bar.refresh()


def _pending(container: Container, ids: list[int]) -> int:
    with container.sessions() as s:
        statuses = s.scalars(select(Document.status).where(Document.id.in_(ids))).all()
    return sum(1 for st in statuses if st not in _DONE)


def _report(container: Container, ids: list[int]) -> bool:
    with container.sessions() as s:
        docs = s.scalars(select(Document).where(Document.id.in_(ids))).all()
    failed = [d for d in docs if d.status == DocumentStatus.FAILED.value]
    for d in failed:
        typer.echo(f"failed {d.filename}: {d.error_code}: {d.error}", err=True)
    typer.echo(f"{len(docs) - len(failed)} indexed, {len(failed)} failed")
    return not failed
