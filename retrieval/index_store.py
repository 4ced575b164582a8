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
from retrieval.index_policy import IndexPolicy
from retrieval.vector_index import VectorIndex, read_stamp

log = logging.getLogger(__name__)
_BATCH = 500


Key = tuple[int, int]  # (collection id, index generation)


def log_head(session: Session, collection_id: int, generation: int = 1) -> int:
    """The newest index-log seq of a collection's generation (0 when it has none)."""
    q = select(func.max(IndexLog.seq)).where(
        IndexLog.collection_id == collection_id, IndexLog.generation == generation
    )
    return int(session.scalar(q) or 0)


def log_tail(
    session: Session, collection_id: int, generation: int, after: int, head: int
) -> tuple[list[int], list[int]]:
    """Chunk ids added and removed by the log entries in (after, head]; the last op wins."""
    q = (
        select(IndexLog.chunk_id, IndexLog.op)
        .where(
            IndexLog.collection_id == collection_id,
            IndexLog.generation == generation,
            IndexLog.seq > after,
            IndexLog.seq <= head,
        )
        .order_by(IndexLog.seq)
    )
    last: dict[int, int] = {}
    for chunk_id, op in session.execute(q):
        last[chunk_id] = op
    return [c for c, op in last.items() if op > 0], [c for c, op in last.items() if op < 0]


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

    def __init__(
        self, directory: Path, *, use_gpu: bool = False, policy: IndexPolicy | None = None
    ) -> None:
        self.directory = directory
        self.use_gpu = use_gpu
        self.policy = policy or IndexPolicy()
        self._lock = threading.Lock()
        self._current: dict[Key, VectorIndex] = {}
        self._stale_files: set[Key] = set()

    def path(self, collection_id: int, generation: int = 1) -> Path:
        """The file holding the checkpoint of a collection's index generation."""
        return self.directory / f"collection-{collection_id}-g{generation}.faiss"

    def current(
        self, session: Session, collection_id: int, generation: int, dim: int
    ) -> VectorIndex:
        """The index reflecting every committed change of the collection's generation."""
        key = (collection_id, generation)
        head = log_head(session, collection_id, generation)
        idx = self._current.get(key)
        if idx is not None and idx.seq == head:
            return idx
        with self._lock:
            idx = self._current.get(key)
            if idx is None or idx.seq != head:
                if idx is not None and idx.seq > head:
                    log.warning("index %s is ahead of SQL; rebuilding", key)
                    idx = None  # the database was restored or replaced under us
                idx = self._catch_up(session, key, dim, idx, head)
                self._current[key] = idx
                # A reader asking for a newer generation will not need the older ones again.
                older = [k for k in self._current if k[0] == collection_id and k[1] < generation]
                for old in older:
                    del self._current[old]
            return idx

    def _catch_up(
        self, session: Session, key: Key, dim: int, idx: VectorIndex | None, head: int
    ) -> VectorIndex:
        path = self.path(*key)
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
            base = self._rebuild(session, key, dim)
            self._stale_files.add(key)  # the file on disk is wrong or missing: rewrite it
        self._replay(session, base, key, head)
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

    def _rebuild(self, session: Session, key: Key, dim: int) -> VectorIndex:
        """A fresh index of every current chunk; later log entries replay idempotently."""
        idx = VectorIndex.empty(dim)
        q = (
            select(Chunk.id, Chunk.vector)
            .where(Chunk.collection_id == key[0], Chunk.generation == key[1])
            .order_by(Chunk.id)
        )
        ids: list[int] = []
        blobs: list[bytes] = []
        for chunk_id, vec in session.execute(q.execution_options(yield_per=5000)):
            ids.append(chunk_id)
            blobs.append(vec)
            if len(ids) >= 5000:
                idx.apply(np.asarray(ids), _stack(blobs, dim), np.zeros(0, np.int64), 0)
                ids, blobs = [], []
        idx.apply(np.asarray(ids, dtype=np.int64), _stack(blobs, dim), np.zeros(0, np.int64), 0)
        if self.policy.needs_reshape(idx):
            idx = self.policy.reshape(idx)
        # Entries up to `head` may predate rows we just read; replaying them is harmless.
        idx.seq = 0
        return idx

    def _replay(self, session: Session, idx: VectorIndex, key: Key, head: int) -> None:
        """Apply log entries in (idx.seq, head]; the last op per chunk wins."""
        adds, removes = log_tail(session, key[0], key[1], idx.seq, head)
        removed = np.asarray(removes, dtype=np.int64)
        found, blobs = _vectors(session, adds)
        # Added then deleted before we looked: drop it too.
        gone = np.setdiff1d(np.asarray(adds, dtype=np.int64), found)
        idx.apply(found, _stack(blobs, idx.dim), np.concatenate([removed, gone]), head)

    def reshape(self, session: Session, collection_id: int, generation: int) -> bool:
        """Writer only: switch the index to the kind its size calls for (exact ↔ IVF, or a
        retrained IVF once it has grown); False when it already fits. Searches keep using the
        old object until the new one, caught up with the log, replaces it."""
        key = (collection_id, generation)
        idx = self._current.get(key)
        if idx is None or not self.policy.needs_reshape(idx):
            return False
        new = self.policy.reshape(idx)
        with self._lock:
            now = self._current.get(key)
            if now is not None and now.seq > new.seq:  # a reader caught up meanwhile
                self._replay(session, new, key, now.seq)
            if self.use_gpu:
                new.to_gpu()
            self._current[key] = new
            self._stale_files.add(key)
        log.info("index %s is now %s (%d vectors)", key, new.kind, new.ntotal)
        return True

    def checkpoint(self, collection_id: int, generation: int, meta: dict[str, Any]) -> bool:
        """Persist the in-memory index (writer only); False if there is nothing newer."""
        key = (collection_id, generation)
        idx = self._current.get(key)
        if idx is None:
            return False
        path = self.path(*key)
        if key not in self._stale_files and read_stamp(path) >= idx.seq:
            return False
        idx.save(path, meta)
        self._stale_files.discard(key)
        return True

    def drop(self, collection_id: int, keep: int | None = None) -> bool:
        """Forget a collection's indexes (all generations but `keep`) and remove their files."""
        dropped = False
        with self._lock:
            for key in [k for k in self._current if k[0] == collection_id and k[1] != keep]:
                del self._current[key]
                dropped = True
        for path in self.directory.glob(f"collection-{collection_id}-g*.faiss"):
            if path != self.path(collection_id, keep or 0):
                path.unlink(missing_ok=True)
                dropped = True
        return dropped
