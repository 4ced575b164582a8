"""Runs one claimed job for the single writer, dispatching on its type."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from data.jobs import JobType, finish
from data.models import Job
from data.protocols import Embedders
from ingest.blobs import BlobStore
from ingest.collections import delete_collection
from ingest.deletion import delete_now
from ingest.indexing import DocumentIndexer
from ingest.rebuild import rebuild_collection
from ingest.reindex import reindex
from ingest.sealed import discard
from ingest.writer import ProcessorConfig, Step, Writer

log = logging.getLogger(__name__)

__all__ = ["JobProcessor", "ProcessorConfig"]


class JobProcessor:
    """Executes ingest, delete, reindex, rebuild and collection-delete jobs."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        blobs: BlobStore,
        embedders: Embedders,
        config: ProcessorConfig,
        holder: str,
        on_step: Step | None = None,
        between: Callable[[], None] | None = None,
    ) -> None:
        self.w = Writer(sessions, blobs, embedders, config, holder, on_step or (lambda _s: None))
        self.indexer = DocumentIndexer(self.w)
        # Called by an upload's indexing while its parse runs and between its embedding
        # batches (the worker runs waiting small uploads there); other job types never yield.
        self.between = between

    def run(self, job_id: int) -> int | None:
        """Do one claimed job; returns its collection id. Document failures are recorded."""
        with self.w.sessions() as s:
            job = s.get(Job, job_id)
            if job is None:
                return None
            kind, cid, doc_id, payload = job.type, job.collection_id, job.document_id, job.payload
        if kind == JobType.INGEST.value:
            assert doc_id is not None
            self.indexer.index(doc_id, dict(payload), job_id=job_id, between=self.between)
            discard(self.w.blobs, payload.get("password"))  # the job is over, so is its pad
        elif kind == JobType.DELETE.value:
            assert doc_id is not None
            delete_now(self.w, doc_id, job_id)
        elif kind == JobType.REINDEX.value:
            reindex(self.w, self.indexer, job_id)
        elif kind == JobType.REBUILD.value:
            rebuild_collection(self.w, self.indexer, job_id)
        elif kind == JobType.DELETE_COLLECTION.value:
            delete_collection(self.w, job_id)
        else:
            with self.w.fenced() as s:
                job = s.get(Job, job_id)
                assert job is not None
                finish(job, error=f"unknown job type {kind!r}")
                s.commit()
        return cid
