"""Secrets a queued job needs (a PDF password) kept out of the database in clear.

The job row holds the secret XORed with a one-time pad of random bytes; the pad is a file
of its own under the blob store, removed once the job is over. So neither the database,
nor its write-ahead log, nor a backup of either, ever holds the secret: what they keep is
noise without a pad that no longer exists. (The API and the worker are separate processes
that share the state directory, so an in-memory key would not reach the worker.)
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ingest.blobs import BlobStore

__all__ = ["discard", "seal", "unseal"]

_PAD_SUFFIX = ".pad"


def _pad_dir(blobs: BlobStore) -> Path:
    return blobs.root / "pads"


def _pad_path(blobs: BlobStore, name: object) -> Path | None:
    """The pad file a sealed value names (None for anything that is not a pad name)."""
    if not isinstance(name, str) or not name.isalnum():
        return None
    return _pad_dir(blobs) / f"{name}{_PAD_SUFFIX}"


def seal(blobs: BlobStore, secret: str) -> dict[str, str]:
    """`secret` as a JSON-safe value for a job payload; its pad is written (0600) first."""
    data = secret.encode("utf-8")
    pad = secrets.token_bytes(len(data))
    name = secrets.token_hex(16)
    folder = _pad_dir(blobs)
    folder.mkdir(parents=True, exist_ok=True)
    path = _pad_path(blobs, name)
    assert path is not None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pad)
        f.flush()
        os.fsync(f.fileno())  # the job row commits next: its pad must survive a crash
    return {"pad": name, "xor": bytes(a ^ b for a, b in zip(data, pad, strict=True)).hex()}


def unseal(blobs: BlobStore, sealed: object) -> str | None:
    """The secret back; None when there is none, or its pad is gone (the job ended)."""
    if isinstance(sealed, str):  # queued by a version that stored it in clear
        return sealed or None
    if not isinstance(sealed, dict):
        return None
    path = _pad_path(blobs, sealed.get("pad"))
    try:
        pad = path.read_bytes() if path is not None else b""
        data = bytes.fromhex(str(sealed.get("xor", "")))
    except (OSError, ValueError):
        return None
    if len(pad) != len(data):
        return None
    return bytes(a ^ b for a, b in zip(data, pad, strict=True)).decode("utf-8", "replace")


def discard(blobs: BlobStore, sealed: object) -> None:
    """Remove the pad of `sealed`: the value left in the database is noise from now on."""
    if isinstance(sealed, dict):
        path = _pad_path(blobs, sealed.get("pad"))
        if path is not None:
            path.unlink(missing_ok=True)
