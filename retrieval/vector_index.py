"""One collection's FAISS index: ids are chunk ids, stamped with the index-log seq it covers."""

from __future__ import annotations

import json
import logging
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

_MAGIC = b"GRNDIDX1"
log = logging.getLogger(__name__)


@dataclass
class VectorIndex:
    """An inner-product index over unit vectors (score = cosine similarity): exact ("flat"),
    or inverted lists ("ivf") for large collections. Both remove and replace ids in place."""

    dim: int
    index: Any
    seq: int = 0  # the last index_log seq this index reflects
    gpu_index: Any = None  # a GPU replica for search, when CUDA FAISS is present

    @classmethod
    def empty(cls, dim: int) -> VectorIndex:
        """A new, empty exact index for `dim`-dimensional vectors."""
        return cls(dim=dim, index=faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @property
    def ntotal(self) -> int:
        """How many vectors the index holds."""
        return int(self.index.ntotal)

    @property
    def kind(self) -> str:
        """ "flat" (exact) or "ivf" (approximate, `nprobe` of `nlist` lists searched)."""
        return "ivf" if isinstance(self.index, faiss.IndexIVF) else "flat"

    @property
    def nprobe(self) -> int:
        """Lists an IVF search visits (0 for flat)."""
        return int(self.index.nprobe) if self.kind == "ivf" else 0

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything in the index."""
        if self.ntotal == 0:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        if self.kind == "flat":
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            flat: Any = faiss.downcast_index(self.index.index)
        else:
            ids = _ivf_ids(self.index)
            return ids, self.index.reconstruct_batch(ids)
        xb = faiss.rev_swig_ptr(flat.get_xb(), self.ntotal * self.dim)
        return ids, np.array(xb, dtype=np.float32).reshape(-1, self.dim)

    def copy(self) -> VectorIndex:
        """A deep copy, so a reader's object is never mutated under it."""
        return VectorIndex(dim=self.dim, index=faiss.clone_index(self.index), seq=self.seq)

    def apply(self, ids: np.ndarray, vectors: np.ndarray, removed: np.ndarray, seq: int) -> None:
        """Remove `removed` and (re)add `ids`; idempotent, so replaying a tail twice is safe."""
        touched = np.concatenate([removed, ids]).astype(np.int64)
        if touched.size:
            self.index.remove_ids(touched)
        if ids.size:
            self.index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64)
            )
        self.seq = max(self.seq, seq)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query, among `allowed` ids if given; -1 pads short lists."""
        k = max(1, min(k, self.ntotal))
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if self.ntotal == 0 or (allowed is not None and len(allowed) == 0):
            n = queries.shape[0]
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        if allowed is not None:
            # Filtered exactly inside FAISS (not after), so a filter never starves top-k; on
            # IVF every list is visited, but only the allowed ids are scored.
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            params: Any
            if self.kind == "ivf":
                params = faiss.SearchParametersIVF(sel=sel, nprobe=self.index.nlist)  # type: ignore[call-arg]
            else:
                params = faiss.SearchParameters(sel=sel)  # type: ignore[call-arg]
            found: tuple[np.ndarray, np.ndarray] = self.index.search(q, k, params=params)
            return found
        searcher = self.gpu_index if self.gpu_index is not None else self.index
        scores, ids = searcher.search(q, k)
        return scores, ids

    def vector(self, chunk_id: int) -> np.ndarray | None:
        """The stored vector of `chunk_id`, or None if the index does not hold it."""
        try:
            return np.asarray(self.index.reconstruct(int(chunk_id)), dtype=np.float32)
        except RuntimeError:  # IndexIDMap2 and the IVF direct map raise for an unknown id
            return None

    def to_gpu(self) -> None:
        """Search on a GPU replica (the CPU index stays the master that is saved); an index
        the GPU build can't copy (e.g. IVF with a hash-table direct map) stays on the CPU."""
        try:
            self.gpu_index = faiss.index_cpu_to_gpu(gpu_resources(), 0, self.index)
        except RuntimeError as exc:
            log.warning("%s index stays on the CPU: %s", self.kind, exc)
            self.gpu_index = None

    def save(self, path: Path, meta: dict[str, Any]) -> None:
        """Write index + stamp in one file, atomically (temp file, fsync, os.replace)."""
        header = json.dumps({**meta, "seq": self.seq, "dim": self.dim}).encode()
        blob = faiss.serialize_index(self.index)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_MAGIC + struct.pack("<I", len(header)) + header)
                f.write(blob.data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> tuple[VectorIndex, dict[str, Any]]:
        """Read a file written by `save`; returns the index and its header."""
        raw = path.read_bytes()
        if raw[:8] != _MAGIC:
            raise ValueError(f"{path} is not a Grounded index file")
        (hlen,) = struct.unpack("<I", raw[8:12])
        meta = json.loads(raw[12 : 12 + hlen])
        index = faiss.deserialize_index(np.frombuffer(raw, dtype=np.uint8, offset=12 + hlen))
        return cls(dim=int(meta["dim"]), index=index, seq=int(meta["seq"])), meta


def _ivf_ids(index: Any) -> np.ndarray:
    """Every id stored in an IVF index's lists."""
    invlists = index.invlists
    parts = []
    for lst in range(index.nlist):
        size = invlists.list_size(lst)
        if size:
            ptr = invlists.get_ids(lst)
            parts.append(np.array(faiss.rev_swig_ptr(ptr, size), dtype=np.int64))
            invlists.release_ids(lst, ptr)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def read_stamp(path: Path) -> int:
    """The seq a saved index covers, reading only its header (-1 if absent or unreadable)."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
            if head[:8] != _MAGIC:
                return -1
            (hlen,) = struct.unpack("<I", head[8:12])
            return int(json.loads(f.read(hlen))["seq"])
    except (OSError, ValueError, KeyError):
        return -1


_GPU_RES: Any = None


def set_faiss_threads(n: int) -> None:
    """OpenMP threads FAISS uses per call, process-wide."""
    faiss.omp_set_num_threads(n)


def gpu_available() -> bool:
    """True when this FAISS build has CUDA support and sees a GPU."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def gpu_resources() -> Any:
    """One shared set of GPU resources per process."""
    global _GPU_RES
    if _GPU_RES is None:
        _GPU_RES = faiss.StandardGpuResources()
    return _GPU_RES
