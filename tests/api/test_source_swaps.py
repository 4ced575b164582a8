"""A watched folder changed between its scan and the read: a symlink swapped in is not followed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.container import Container
from api.settings import Settings
from api.worker import Worker
from data.models import Chunk, Document

SECRET = "The vault opens with code 4711-SWORDFISH."
MARKER = "SWORDFISH"


def _write(path: Path, text: str, *, bump: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if bump:
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def _stored_anywhere(container: Container) -> bool:
    """Whether the secret reached SQL, the blob store, or any index file."""
    with container.sessions() as s:
        if s.scalar(select(Chunk.id).where(Chunk.text.contains(MARKER))) is not None:
            return True
        if s.scalar(select(Document.id).where(Document.text.contains(MARKER))) is not None:
            return True
    for top in (container.settings.home, container.blobs.root):
        for dirpath, _dirs, files in os.walk(top):
            for name in files:
                path = Path(dirpath) / name
                if not path.is_symlink() and MARKER.encode() in path.read_bytes():
                    return True
    return False


def _sync(
    client: TestClient, container: Container, job_id: int, swap: Callable[[], None]
) -> dict[str, Any]:
    """Run the queued reindex job; `swap()` changes the folder right after its scan."""

    def on_step(step: str) -> None:
        if step == "reindex_after_scan":
            swap()

    Worker(container, holder="w", on_step=on_step).run_until_idle()
    return client.get(f"/v1/jobs/{job_id}").json()


def test_symlinks_swapped_in_after_the_scan_are_not_followed(
    client: TestClient, container: Container, settings: Settings, tmp_path: Path
) -> None:
    root = settings.source_root_paths[0] / "handbook"
    _write(root / "leave.md", "# Leave\n\nAnnual leave is 25 days; carry over up to 5.\n")
    _write(root / "sub" / "parking.md", "# Parking\n\nCyclists park for free.\n")
    outside = tmp_path / "outside"  # not under the source roots
    _write(outside / "secret.md", SECRET)
    _write(outside / "sub" / "parking.md", SECRET)
    r = client.post("/v1/collections/default/sources", json={"path": str(root)})
    assert r.status_code == 201, r.text

    def swap_folder() -> None:  # a folder above a listed file becomes a link out
        (root / "sub").rename(tmp_path / "old-sub")
        os.symlink(outside / "sub", root / "sub")

    first = _sync(client, container, r.json()["job"]["id"], swap_folder)
    codes = {e["file"]: e["code"] for e in first["progress"]["errors"]}
    assert codes == {"handbook/sub/parking.md": "unsafe_path"}, first
    assert first["progress"]["added"] == 1 and first["progress"]["skipped"] == 1

    # A file already indexed, changed, then swapped for a link before it is read.
    _write(root / "leave.md", "# Leave\n\nAnnual leave is 30 days from 2025.\n", bump=5)

    def swap_file() -> None:
        (root / "leave.md").unlink()
        os.symlink(outside / "secret.md", root / "leave.md")

    job_id = client.post("/v1/jobs", json={"type": "reindex"}).json()["id"]
    second = _sync(client, container, job_id, swap_file)
    codes = {e["file"]: e["code"] for e in second["progress"]["errors"]}
    assert codes == {"handbook/leave.md": "unsafe_path"}, second
    docs = {d["filename"]: d for d in client.get("/v1/documents").json()["items"]}
    leave = docs["handbook/leave.md"]
    assert leave["status"] == "failed" and leave["error_code"] == "unsafe_path"
    hits = client.post("/v1/search", json={"query": "vault code"}).json()["hits"]
    assert all(MARKER not in h["text"] for h in hits)
    assert hits and hits[0]["filename"] == "handbook/leave.md"  # the last good version stays
    assert not _stored_anywhere(container)
