"""Every tricky fixture ends indexed, failed with a specific code, or refused with a 4xx —
in one batch, without harming the rest of the batch or what was indexed before."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from api.worker import Worker
from data.jobs import claim_next
from data.leases import WRITER, try_acquire
from ingest.processor import JobProcessor, ProcessorConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

EXPECTED = {
    "docx/blk-paras-and-tables.docx": "indexed",
    "docx/category-level.docx": "indexed",
    "docx/docx-hdrftr.docx": "indexed",
    "docx/docx-shapes.docx": "indexed",
    "docx/docx-tables.docx": "indexed",
    "html/example-steelJIS-datasheet-utf-16.html": "indexed",
    "html/example-with-scripts.html": "indexed",
    "html/fake-html-cp1252.html": "indexed",
    "html/fake-html-with-footer-and-header.html": "indexed",
    "html/wiki-style.html": "indexed",
    "other/empty.xlsx": "failed:no_text",
    "other/fake.doc": "415",
    "other/minimal.pptx": "failed:no_text",
    "other/password_protected.xlsx": "415",
    "other/simple.odt": "415",
    "other/simple.zip": "415",
    "pptx/fake-power-point-table.pptx": "indexed",
    "pptx/group-shapes-nested.pptx": "indexed",
    "pptx/sld-notes.pptx": "indexed",
    "xlsx/stanley-cups.xlsx": "indexed",
    "xlsx/vodafone.xlsx": "indexed",
    "pdf/crazyones-truncated.pdf": "failed:corrupt",
    "pdf/docx-named-pdf.pdf": "failed:no_text",  # really an (empty) .docx: the bytes decide
    "pdf/encrypted-file.pdf": "failed:encrypted",
    "pdf/imagemagick-CCITTFaxDecode.pdf": "failed:no_text",
    "pdf/jo-japanese-vertical.pdf": "indexed",
    "pdf/ocr_test-chinese.pdf": "indexed",
    "pdf/pagelabels.pdf": "indexed",
    "pdf/r2-user-password.pdf": "failed:encrypted",
    "pdf/r4-aes-user-password.pdf": "failed:encrypted",
    "pdf/r4-owner-password.pdf": "indexed",
    "pdf/r6-both-passwords.pdf": "failed:encrypted",
    "pdf/simple1-no-xref.pdf": "indexed",
    "text/empty.txt": "422",
    "text/fake-text-all-whitespace.txt": "failed:no_text",
    "text/fake-text-utf-16-be.txt": "indexed",
    "text/fake-text-utf-16-le.txt": "indexed",
    "text/fake-text-utf-16.txt": "indexed",
    "text/fake-text-utf-32.txt": "indexed",
    "text/umlauts-non-utf8.md": "indexed",
}
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_expectations_cover_every_fixture() -> None:
    files = {
        str(p.relative_to(FIXTURES))
        for p in FIXTURES.rglob("*")
        if p.is_file() and p.name != "ATTRIBUTION.md" and not p.name.endswith(".ref.txt")
    }
    assert files == set(EXPECTED)


@sqlite_only
def test_tricky_batch_ends_cleanly(client: TestClient, run_jobs: Worker) -> None:
    _, keep = _post(client, "keep.txt", b"The archive room is on the third floor.\n")
    run_jobs.run_until_idle()
    queued: dict[str, int] = {}
    outcomes: dict[str, str] = {}
    for rel in EXPECTED:
        status, body = _post(client, rel.replace("/", "__"), (FIXTURES / rel).read_bytes())
        if status == 202:
            queued[rel] = body["id"]
        else:
            outcomes[rel] = str(status)
            assert body["error"] and body["message"]
    run_jobs.run_until_idle()
    for rel, doc_id in queued.items():
        doc = client.get(f"/v1/documents/{doc_id}").json()
        outcomes[rel] = "indexed" if doc["status"] == "indexed" else f"failed:{doc['error_code']}"
        if doc["status"] == "failed":
            assert doc["error"]
    assert outcomes == EXPECTED
    assert client.get(f"/v1/documents/{keep['id']}").json()["status"] == "indexed"
    hits = client.post("/v1/search", json={"query": "where is the archive room"}).json()["hits"]
    assert hits[0]["document_id"] == keep["id"]


@sqlite_only
def test_pdf_pages_labels_and_password(client: TestClient, run_jobs: Worker) -> None:
    pdf = (FIXTURES / "pdf/pagelabels.pdf").read_bytes()
    _, doc = _post(client, "labels.pdf", pdf)
    enc = (FIXTURES / "pdf/r4-aes-user-password.pdf").read_bytes()
    _, locked = _post(client, "locked.pdf", enc)
    run_jobs.run_until_idle()
    got = client.get(f"/v1/documents/{doc['id']}").json()
    assert got["status"] == "indexed" and got["pages"] == 5
    assert client.get(f"/v1/documents/{locked['id']}").json()["error_code"] == "encrypted"
    # Same bytes again with the password retries the failed document.
    status, again = _post(client, "locked.pdf", enc, password="asdfzxcv")
    assert status == 202 and again["id"] == locked["id"]
    run_jobs.run_until_idle()
    assert client.get(f"/v1/documents/{locked['id']}").json()["status"] == "indexed"
    hits = client.post("/v1/search", json={"query": "pdf encryption test password"}).json()
    assert hits["hits"][0]["document_id"] == locked["id"]
    assert hits["hits"][0]["page_start"] == 1


@sqlite_only
def test_parser_that_hangs_ends_timeout(
    client: TestClient, container: Container, tmp_path: Path
) -> None:
    # The test parser writes its pid to the file the document names.
    _, doc = _post(client, "slow.txt", str(tmp_path / "pid").encode() + b"\n")
    config = ProcessorConfig(
        parse_timeout_s=1.0, parsers={"text": "tests.ingest.sandbox_parsers:hang"}
    )
    proc = JobProcessor(
        container.sessions,
        container.blobs,
        container.embedders,
        config,
        holder="t",
    )
    with container.sessions() as s:
        assert try_acquire(s, WRITER, "t", 30)
        job = claim_next(s, fence_holder="t", ttl_s=30)
        assert job is not None
    proc.run(job.id)
    got = client.get(f"/v1/documents/{doc['id']}").json()
    assert got["status"] == "failed" and got["error_code"] == "timeout"
    assert "longer than 1" in got["error"]


def _post(client: TestClient, name: str, data: bytes, **form: str) -> tuple[int, dict]:
    r = client.post("/v1/documents", files={"file": (name, data)}, data=form)
    return r.status_code, r.json()
