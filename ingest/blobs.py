"""Originals stored by content hash under the state directory (shared between identical uploads)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from data.errors import TooLargeError
from data.repositories import blob_in_use


@dataclass(frozen=True)
class StagedFile:
    """An upload written to a temp file, with its hash and size, not yet in the store."""

    path: Path
    sha256: str
    size: int
    head: bytes


class BlobStore:
    """Content-addressed files: `root/ab/cd/abcd...`; writes are atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        """Where the original with this hash lives."""
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def stage(self, chunks: Iterable[bytes], *, max_bytes: int) -> StagedFile:
        """Stream `chunks` to a temp file, hashing; over `max_bytes` is refused mid-stream."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=".upload")
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLargeError(
                            f"file is larger than the {max_bytes / 1e6:g} MB upload limit"
                        )
                    if len(head) < 8192:
                        head += chunk[: 8192 - len(head)]
                    digest.update(chunk)
                    f.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return StagedFile(path=Path(name), sha256=digest.hexdigest(), size=size, head=head)

    def commit(self, staged: StagedFile) -> Path:
        """Move a staged file into the store (a no-op if that content is already there)."""
        dest = self.path_for(staged.sha256)
        if dest.exists():
            staged.path.unlink(missing_ok=True)
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.path, dest)
        return dest

    def discard(self, staged: StagedFile) -> None:
        """Drop a staged file that will not be kept."""
        staged.path.unlink(missing_ok=True)

    def delete(self, sha256: str) -> None:
        """Remove an original (the caller checked nothing references it)."""
        self.path_for(sha256).unlink(missing_ok=True)


def release_blob(session: Session, blobs: BlobStore, sha256: str | None) -> None:
    """Delete an original once no document's current or indexed content is it."""
    if sha256 and not blob_in_use(session, sha256):
        blobs.delete(sha256)
