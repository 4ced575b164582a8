"""A PDF password never reaches the database in clear: not the row, not the SQLite WAL."""

from __future__ import annotations

import io
import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.container import Container
from api.settings import Settings
from api.worker import Worker
from data.models import Job
from ingest.blobs import BlobStore
from ingest.sealed import discard, seal, unseal

FIXTURES = Path(__file__).parents[1] / "fixtures"
# Long enough that finding it in a database file by chance is out of the question.
PASSWORD = "Wq7-secret-Zr4p-h9Lm"


def locked_pdf(password: str) -> bytes:
    """A fixture PDF re-encrypted (RC4-128) with `password` as its user password."""
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(FIXTURES / "pdf" / "r2-user-password.pdf")
    reader.decrypt("asdfzxcv")  # the fixture's own password, which its text also shows
    writer = PdfWriter(clone_from=reader)
    writer.encrypt(user_password=password, owner_password=password[::-1], algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def test_seal_unseal_discard(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "originals")
    sealed = seal(blobs, "pässwörd")
    assert "pässwörd" not in json.dumps(sealed) and "pässwörd".encode() not in str(sealed).encode()
    assert unseal(blobs, sealed) == "pässwörd"
    pads = list((tmp_path / "originals" / "pads").iterdir())
    assert len(pads) == 1 and pads[0].stat().st_mode & 0o077 == 0  # owner-only
    discard(blobs, sealed)
    assert unseal(blobs, sealed) is None and not any(pads[0].parent.iterdir())
    assert unseal(blobs, "legacy") == "legacy"  # a job queued before the upgrade
    assert unseal(blobs, None) is None
    assert unseal(blobs, {"pad": "../../etc/passwd", "xor": "00"}) is None


def test_a_pdf_password_is_never_written_in_clear(
    client: TestClient, container: Container, run_jobs: Worker, settings: Settings
) -> None:
    r = client.post(
        "/v1/documents",
        files={"file": ("locked.pdf", locked_pdf(PASSWORD))},
        data={"password": PASSWORD},
    )
    assert r.status_code == 202, r.text
    with container.sessions() as s:
        queued = s.scalars(select(Job.payload)).one()
    assert "password" in queued and PASSWORD not in json.dumps(queued)

    run_jobs.run_until_idle()
    doc = client.get(f"/v1/documents/{r.json()['id']}").json()
    assert doc["status"] == "indexed", doc  # the worker could still use the password
    pads = container.blobs.root / "pads"
    assert not any(pads.iterdir())  # the pad went with the job: the sealed value is noise
    if settings.db_url.startswith("sqlite"):
        db = Path(settings.db_url.removeprefix("sqlite:///"))
        files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
        assert db.with_name(db.name + "-wal") in files  # the log is there, and clean
        for f in files:
            assert PASSWORD.encode() not in f.read_bytes(), f.name
