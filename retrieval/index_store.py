"""Keeps each collection's FAISS index in step with SQL: load the file, replay the log tail."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data.models import Chunk, IndexLog
from retrieval.vector_index import VectorIndex, read_stamp

log = logging.getLogger(__name__)
_BATCH = 500


def log_head(session: Session, collection_id: int) -> int:
    """The newest index-log seq of a collection (0 when it has none)."""
    q = select(func.max(IndexLog.seq)).where(IndexLog.collection_id == collection_id)
    return int(session.scalar(q) or 0)


def _vectors(session: Session, ids: list[int]) -> tuple[np.ndarray, list[bytes]]:
    """Vectors of the chunks among `ids` that still exist."""
    found: list[int] = []
    blobs: list[bytes] = []
    for i in range(0, len(ids), _BATCH):
        batch = ids[i : i + _BATCH]
        rows = session.execute(select(Chunk.id, Chunk.vector).where(Chunk.id.in_(batch)))
        for cid, vec in rows:
            found.append(cid)
            blobs.append(vec)
    return np.asarray(found, dtype=np.int64), blobs


def _stack(blobs: Iterable[bytes], dim: int) -> np.ndarray:
    arrays = [np.frombuffer(b, dtype=np.float32) for b in blobs]
    if not arrays:
        return np.zeros((0, dim), dtype=np.float32)
    return np.vstack(arrays).reshape(-1, dim)


class IndexStore:
    """Per-collection indexes; readers get an object nobody mutates (copy-on-write)."""

    def __init__(self, directory: Path, *, use_gpu: bool = False) -> None:
        self.directory = directory
        self.use_gpu = use_gpu
        self._lock = threading.Lock()
        self._current: dict[int, VectorIndex] = {}
        self._stale_files: set[int] = set()

    def path(self, collection_id: int) -> Path:
        """The file holding a collection's checkpoint."""
        return self.directory / f"collection-{collection_id}.faiss"

    def current(self, session: Session, collection_id: int, dim: int) -> VectorIndex:
        """The index reflecting every committed change of the collection."""
        head = log_head(session, collection_id)
        idx = self._current.get(collection_id)
        if idx is not None and idx.seq == head:
            return idx
        with self._lock:
            idx = self._current.get(collection_id)
            if idx is None or idx.seq != head:
                if idx is not None and idx.seq > head:
                    log.warning("index of collection %d is ahead of SQL; rebuilding", collection_id)
                    idx = None  # the database was restored or replaced under us
                idx = self._catch_up(session, collection_id, dim, idx, head)
                self._current[collection_id] = idx
            return idx

    def _catch_up(
        self, session: Session, cid: int, dim: int, idx: VectorIndex | None, head: int
    ) -> VectorIndex:
        path = self.path(cid)
        stamp = read_stamp(path)
        base: VectorIndex | None = None
        if stamp > head:
            log.warning(
                "index file %s covers seq %d beyond SQL's %d; rebuilding", path, stamp, head
            )
        elif stamp > (idx.seq if idx is not None else -1):
            base = self._load(path, dim)
        elif idx is not None:
            base = idx.copy()
        if base is None:
            base = self._rebuild(session, cid, dim)
            self._stale_files.add(cid)  # the file on disk is wrong or missing: rewrite it
        self._replay(session, base, cid, head)
        if self.use_gpu:
            base.to_gpu()
        return base

    def _load(self, path: Path, dim: int) -> VectorIndex | None:
        """A checkpoint file, or None when it is unreadable or of another dimension."""
        try:
            base, _meta = VectorIndex.load(path)
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("index file %s unreadable (%s); rebuilding from SQL", path, exc)
            return None
        if base.dim != dim:
            log.warning("index file %s has dim %d, expected %d; rebuilding", path, base.dim, dim)
            return None
        return base

    def _rebuild(self, session: Session, cid: int, dim: int) -> VectorIndex:
        """A fresh index of every current chunk; later log entries replay idempotently."""
        idx = VectorIndex.empty(dim)
        q = select(Chunk.id, Chunk.vector).where(Chunk.collection_id == cid).order_by(Chunk.id)
        ids: list[int] = []
        blobs: list[bytes] = []
        for chunk_id, vec in session.execute(q.execution_options(yield_per=5000)):
            ids.append(chunk_id)
            blobs.append(vec)
            if len(ids) >= 5000:
                idx.apply(np.asarray(ids), _stack(blobs, dim), np.zeros(0, np.int64), 0)
                ids, blobs = [], []
        idx.apply(np.asarray(ids, dtype=np.int64), _stack(blobs, dim), np.zeros(0, np.int64), 0)
        # Entries up to `head` may predate rows we just read; replaying them is harmless.
        idx.seq = 0
        return idx

    def _replay(self, session: Session, idx: VectorIndex, cid: int, head: int) -> None:
        """Apply log entries in (idx.seq, head]; the last op per chunk wins."""
        q = (
            select(IndexLog.chunk_id, IndexLog.op)
            .where(IndexLog.collection_id == cid, IndexLog.seq > idx.seq, IndexLog.seq <= head)
            .order_by(IndexLog.seq)
        )
        last: dict[int, int] = {}
        for chunk_id, op in session.execute(q):
            last[chunk_id] = op
        adds = [c for c, op in last.items() if op > 0]
        removed = np.asarray([c for c, op in last.items() if op < 0], dtype=np.int64)
        found, blobs = _vectors(session, adds)
        # Added then deleted before we looked: drop it too.
        gone = np.setdiff1d(np.asarray(adds, dtype=np.int64), found)
        idx.apply(found, _stack(blobs, idx.dim), np.concatenate([removed, gone]), head)

    def checkpoint(self, collection_id: int, meta: dict[str, Any]) -> bool:
        """Persist the in-memory index (writer only); False if there is nothing newer."""
        idx = self._current.get(collection_id)
        if idx is None:
            return False
        stale = collection_id in self._stale_files
        if not stale and read_stamp(self.path(collection_id)) >= idx.seq:
            return False
        idx.save(self.path(collection_id), meta)
        self._stale_files.discard(collection_id)
        return True

    def drop(self, collection_id: int) -> None:
        """Forget a collection's index and remove its file."""
        with self._lock:
            self._current.pop(collection_id, None)
        self.path(collection_id).unlink(missing_ok=True)
