"""Re-sync a collection's watched folders: add, change, rename and delete by content."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from data.errors import DomainError
from data.jobs import finish
from data.models import Collection, Document, Job, Source, utcnow
from data.types import DocumentStatus
from ingest import detect
from ingest.blobs import StagedFile
from ingest.deletion import delete_now
from ingest.indexing import DocumentIndexer
from ingest.scanner import (
    FileEntry,
    Matcher,
    SourceUnavailableError,
    UnsafeFileError,
    hash_file,
    scan,
)
from ingest.uploads import sniff
from ingest.writer import Progress, Writer

log = logging.getLogger(__name__)
_READ = 1 << 20


@dataclass(frozen=True)
class Known:
    """What SQL knows of a folder file, read once per run."""

    id: int
    size: int
    mtime_ns: int | None
    status: str
    content_hash: str
    indexed_hash: str | None

    def same_content(self, sha256: str) -> bool:
        """Whether these bytes are what is indexed (or what already failed)."""
        if self.status == DocumentStatus.FAILED.value:
            return sha256 == self.content_hash
        return self.status == DocumentStatus.INDEXED.value and sha256 == self.indexed_hash


def reindex(w: Writer, indexer: DocumentIndexer, job_id: int) -> None:
    """Run a reindex job: every unpaused folder of the collection, or the one it names."""
    progress = Progress(job_id)
    with w.sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None
        coll = s.get(Collection, job.collection_id)
        q = select(Source.id).where(Source.collection_id == job.collection_id)
        if job.source_id is not None:
            q = q.where(Source.id == job.source_id)
        else:
            q = q.where(Source.paused.is_(False))
        source_ids = [] if coll is None or coll.status != "ready" else list(s.scalars(q))
    problems: list[str] = []
    for sid in source_ids:
        try:
            _sync(w, indexer, sid, progress)
        except SourceUnavailableError as exc:
            log.warning("source %d: %s", sid, exc)
            problems.append(str(exc))
    with w.fenced() as s:
        job = s.get(Job, job_id)
        assert job is not None
        progress.write(job)
        finish(job, error="; ".join(problems) or None)
        for src in s.scalars(select(Source).where(Source.id.in_(source_ids))):
            src.last_run_at = utcnow()
            src.last_job_id = job_id
        s.commit()


def _sync(w: Writer, indexer: DocumentIndexer, source_id: int, progress: Progress) -> None:
    with w.sessions() as s:
        src = s.get(Source, source_id)
        if src is None:
            return
        root, prefix = Path(src.path), src.prefix
        matcher = Matcher(src.include, src.exclude)
        known = {
            d.filename: Known(
                d.id, d.size, d.source_mtime_ns, d.status, d.content_hash, d.indexed_hash
            )
            for d in s.scalars(select(Document).where(Document.source_id == source_id))
            if d.status != DocumentStatus.DELETING.value
        }
    files = {f"{prefix}/{f.rel}": f for f in scan(root, matcher)}  # raises before any change
    progress.add("files_seen", len(files))
    w.on_step("reindex_after_scan")
    work: list[tuple[str, FileEntry, Known | None]] = []
    touched: list[tuple[int, FileEntry]] = []
    new: list[tuple[str, FileEntry]] = []
    for name, f in files.items():
        k = known.get(name)
        if k is None:
            new.append((name, f))
        elif k.size == f.size and k.mtime_ns == f.mtime_ns and k.status in _SETTLED:
            progress.add("unchanged")
            progress.add("files_done")
        elif k.same_content(_hash(f)):
            touched.append((k.id, f))  # only the mtime moved (touched, copied back...)
        else:
            work.append((name, f, k))
    missing = {k.indexed_hash: k for n, k in known.items() if n not in files and k.indexed_hash}
    gone = [k for n, k in known.items() if n not in files]
    for name, f in new:
        moved = missing.pop(_hash(f), None)
        if moved is not None:
            _rename(w, moved.id, name, f)
            gone.remove(moved)
            progress.add("renamed")
            progress.add("files_done")
        else:
            work.append((name, f, None))
    for k in gone:
        progress.add("chunks_removed", delete_now(w, k.id))
        progress.add("deleted")
        progress.maybe_save(w)
    _touch(w, touched)
    progress.add("unchanged", len(touched))
    progress.add("files_done", len(touched))
    for name, f, k in work:
        _index_file(w, indexer, source_id, name, f, k, progress)
        progress.add("files_done")
        progress.maybe_save(w)


_SETTLED = (DocumentStatus.INDEXED.value, DocumentStatus.FAILED.value)


def _hash(f: FileEntry) -> str:
    try:
        return hash_file(f)
    except OSError:
        return ""  # vanished or unreadable: treated as changed, and staging will say why


def _rename(w: Writer, doc_id: int, name: str, f: FileEntry) -> None:
    """A moved file keeps its chunks and vectors; only its name changes."""
    with w.fenced() as s:
        doc = s.get(Document, doc_id)
        if doc is not None:
            doc.filename = name
            doc.source_mtime_ns = f.mtime_ns
        s.commit()


def _touch(w: Writer, touched: list[tuple[int, FileEntry]]) -> None:
    if not touched:
        return
    with w.fenced() as s:
        for doc_id, f in touched:
            doc = s.get(Document, doc_id)
            if doc is not None:
                doc.source_mtime_ns = f.mtime_ns
        s.commit()


def _blocks(f: FileEntry) -> Iterator[bytes]:
    with f.open() as fh:  # refuses a symlink swapped in since the scan
        while block := fh.read(_READ):
            yield block


def _index_file(
    w: Writer,
    indexer: DocumentIndexer,
    source_id: int,
    name: str,
    f: FileEntry,
    known: Known | None,
    progress: Progress,
) -> None:
    """Copy the file's bytes as they are now, register that version, index it."""
    staged: StagedFile | None = None
    try:
        staged = w.blobs.stage(_blocks(f), max_bytes=int(w.config.max_file_mb * 1e6))
        fmt = sniff(staged, name)
    except (DomainError, OSError) as exc:
        if staged is not None:
            w.blobs.discard(staged)
        code = exc.code if isinstance(exc, DomainError | UnsafeFileError) else "unreadable"
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        _skip(w, name, known, f, code, message, progress)
        return
    doc_id = _register(w, source_id, name, known, staged, fmt)
    if doc_id is None:
        w.blobs.discard(staged)
        progress.add("failed")
        progress.error(name, "name_taken", "another document of the collection has this name")
        return
    w.blobs.commit(staged)
    outcome = indexer.index(
        doc_id, {"content_hash": staged.sha256, "format": fmt}, mtime_ns=f.mtime_ns
    )
    progress.add("changed" if known is not None else "added")
    if outcome.status == "failed":
        progress.add("failed")
        progress.error(name, outcome.code, outcome.message)
    progress.add("chunks_embedded", outcome.embedded)
    progress.add("chunks_reused", outcome.reused)


def _register(
    w: Writer, source_id: int, name: str, known: Known | None, staged: StagedFile, fmt: str
) -> int | None:
    """Point the document at the new version (creating it); None if the name is taken."""
    with w.fenced() as s:
        src = s.get(Source, source_id)
        if src is None:
            return None
        doc = s.get(Document, known.id) if known is not None else None
        if doc is None:
            taken = select(Document.id).where(
                Document.collection_id == src.collection_id, Document.filename == name
            )
            if s.scalar(taken) is not None:
                return None
            doc = Document(
                collection_id=src.collection_id, filename=name, source_id=source_id, chunk_count=0
            )
            s.add(doc)
        doc.content_hash, doc.size = staged.sha256, staged.size
        doc.media_type = detect.MEDIA_TYPES[fmt]
        doc.status = DocumentStatus.QUEUED.value
        doc.error_code = doc.error = None
        s.commit()
        return doc.id


def _skip(
    w: Writer,
    name: str,
    known: Known | None,
    f: FileEntry,
    code: str,
    message: str,
    progress: Progress,
) -> None:
    """A file we can't take (empty, too large, unsupported) is skipped, or fails its document."""
    progress.error(name, code, message)
    if known is None:
        progress.add("skipped")
        return
    progress.add("failed")
    with w.fenced() as s:
        doc = s.get(Document, known.id)
        if doc is not None:
            # The last good version stays searchable; size + mtime stop a retry every run.
            doc.status = DocumentStatus.FAILED.value
            doc.error_code, doc.error = code, message
            doc.size, doc.source_mtime_ns = f.size, f.mtime_ns
        s.commit()
