"""Watched folders end to end: add, change, rename, delete on disk, with the schedule firing."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.container import Container
from api.worker import Worker
from data.models import Chunk, Collection

PARAS = [
    "Annual leave is twenty-five days per year, booked through the HR portal.",
    "Expense claims must be filed within thirty days with an itemised receipt.",
    "The office opens at eight and closes at six on weekdays, ten to four on Saturdays.",
    "Security badges must be worn visibly at all times inside the building.",
    "Laptops are replaced every four years; request one from the IT service desk.",
]


def long_text(topic: str, n: int = 5) -> str:
    """Paragraphs long enough for several chunks, so a small edit leaves most unchanged."""
    return "\n\n".join(f"{topic} rule {i}. " + " ".join(PARAS) * 2 for i in range(n)) + "\n"


def write(path: Path, text: str, *, bump: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if bump:  # a distinct mtime even on coarse file-system clocks
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


def job(client: TestClient, job_id: int) -> dict:
    return client.get(f"/v1/jobs/{job_id}").json()


def chunks_of(container: Container, doc_id: int) -> list[int]:
    with container.sessions() as s:
        return list(s.scalars(select(Chunk.id).where(Chunk.document_id == doc_id)))


def index_ids(container: Container, name: str = "default") -> set[int]:
    with container.sessions() as s:
        coll = s.scalar(select(Collection).where(Collection.name == name))
        assert coll is not None and coll.embedder_dim
        idx = container.indexes.current(s, coll.id, coll.generation, coll.embedder_dim)
    return set(idx.contents()[0].tolist())


@pytest.fixture
def folder(settings) -> Path:  # type: ignore[no-untyped-def]
    root = settings.source_root_paths[0] / "handbook"
    write(root / "leave.md", "# Leave\n\nAnnual leave is 25 days; carry over up to 5.\n")
    write(root / "policies.txt", long_text("Policy"))
    write(root / "sub" / "parking.md", "# Parking\n\nParking is free for cyclists' trailers.\n")
    return root


def test_add_change_rename_delete_with_the_schedule_firing(
    client: TestClient, container: Container, folder: Path
) -> None:
    r = client.post(
        "/v1/collections/default/sources",
        json={"path": str(folder), "schedule": "0 * * * *"},
    )
    assert r.status_code == 201, r.text
    src, first = r.json()["source"], r.json()["job"]
    assert src["prefix"] == "handbook" and first["type"] == "reindex"
    worker = Worker(container, holder="w1")
    worker.run_until_idle()
    done = job(client, first["id"])
    assert done["status"] == "succeeded"
    assert done["progress"]["added"] == 3 and done["progress"]["files_seen"] == 3
    docs = {d["filename"]: d for d in client.get("/v1/documents").json()["items"]}
    assert set(docs) == {"handbook/leave.md", "handbook/policies.txt", "handbook/sub/parking.md"}
    assert all(d["status"] == "indexed" and d["source_id"] == src["id"] for d in docs.values())
    policy_id, parking_id = (
        docs["handbook/policies.txt"]["id"],
        docs["handbook/sub/parking.md"]["id"],
    )
    policy_chunks, parking_chunks = (
        chunks_of(container, policy_id),
        chunks_of(container, parking_id),
    )
    assert len(policy_chunks) >= 3

    # On disk: change the end of one file, move another, delete a third, add a fourth.
    write(folder / "policies.txt", long_text("Policy") + "Pets are not allowed.\n", bump=5)
    (folder / "sub" / "moved").mkdir()
    (folder / "sub" / "parking.md").rename(folder / "sub" / "moved" / "parking-2024.md")
    (folder / "leave.md").unlink()
    write(folder / "canteen.md", "# Canteen\n\nOn Fridays the canteen serves fish and chips.\n")

    # Nothing happens until the schedule fires; firing twice at once queues one job.
    assert worker.tick(datetime.now(UTC)) == []
    due = datetime.fromisoformat(client.get(f"/v1/sources/{src['id']}").json()["next_run_at"])
    fired = worker.tick(due + timedelta(seconds=1))
    assert len(fired) == 1 and worker.tick(due + timedelta(seconds=2)) == []
    worker.run_until_idle()
    p = job(client, fired[0])["progress"]
    assert (p["added"], p["changed"], p["renamed"], p["deleted"]) == (1, 1, 1, 1), p
    assert p["files_seen"] == 3 and p.get("failed", 0) == 0

    docs = {d["filename"]: d for d in client.get("/v1/documents").json()["items"]}
    assert set(docs) == {
        "handbook/policies.txt",
        "handbook/sub/moved/parking-2024.md",
        "handbook/canteen.md",
    }
    # The move kept the document, its chunks and vectors: nothing was parsed or embedded again.
    assert docs["handbook/sub/moved/parking-2024.md"]["id"] == parking_id
    assert chunks_of(container, parking_id) == parking_chunks
    # The edit re-embedded only the chunks whose text changed; the others kept their ids.
    kept = set(chunks_of(container, policy_id)) & set(policy_chunks)
    assert len(kept) >= len(policy_chunks) - 1
    assert p["chunks_embedded"] <= 2 + 1  # the changed tail (+ canteen's one chunk)
    with container.sessions() as s:
        all_chunks = set(s.scalars(select(Chunk.id)))
    assert index_ids(container) == all_chunks  # no vector without a row, no row without one

    hits = client.post("/v1/search", json={"query": "what does the canteen serve"}).json()["hits"]
    assert hits[0]["filename"] == "handbook/canteen.md"
    hits = client.post("/v1/search", json={"query": "annual leave carry over"}).json()["hits"]
    assert all(h["filename"] != "handbook/leave.md" for h in hits)

    # Unchanged folder: the next firing hashes nothing new and embeds nothing.
    nxt = datetime.fromisoformat(client.get(f"/v1/sources/{src['id']}").json()["next_run_at"])
    assert nxt > due
    third = worker.tick(nxt + timedelta(minutes=1))
    worker.run_until_idle()
    p = job(client, third[0])["progress"]
    assert p["unchanged"] == 3 and p.get("chunks_embedded", 0) == 0
    assert not {"added", "changed", "deleted", "renamed"} & set(p)


def test_folder_documents_change_only_through_the_folder(
    client: TestClient, run_jobs: Worker, folder: Path
) -> None:
    client.post("/v1/collections/default/sources", json={"path": str(folder)})
    run_jobs.run_until_idle()
    doc = client.get("/v1/documents").json()["items"][0]
    r = client.delete(f"/v1/documents/{doc['id']}")
    assert r.status_code == 409 and "watched folder" in r.json()["message"]
    r = client.put(f"/v1/documents/{doc['id']}", files={"file": ("x.txt", b"other\n")})
    assert r.status_code == 409
    r = client.post(
        "/v1/documents", files={"file": (doc["filename"], b"other\n")}, data={"replace": "true"}
    )
    assert r.status_code == 409


def test_missing_folder_fails_the_job_and_deletes_nothing(
    client: TestClient, run_jobs: Worker, folder: Path
) -> None:
    src = client.post("/v1/collections/default/sources", json={"path": str(folder)}).json()
    run_jobs.run_until_idle()
    folder.rename(folder.with_name("unmounted"))  # e.g. a network share that went away
    r = client.post("/v1/jobs", json={"type": "reindex", "source_id": src["source"]["id"]})
    assert r.status_code == 202
    run_jobs.run_until_idle()
    got = job(client, r.json()["id"])
    assert got["status"] == "failed" and "missing or unreadable" in got["error"]
    assert len(client.get("/v1/documents").json()["items"]) == 3


def test_unsupported_empty_and_broken_files(
    client: TestClient, container: Container, run_jobs: Worker, folder: Path
) -> None:
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    (folder / "empty.txt").write_bytes(b"")
    (folder / ".hidden.md").write_text("# secret\n")
    (folder / "~$lock.docx").write_bytes(b"lock")
    first = client.post("/v1/collections/default/sources", json={"path": str(folder)}).json()
    run_jobs.run_until_idle()
    p = job(client, first["job"]["id"])["progress"]
    assert p["files_seen"] == 5 and p["added"] == 3 and p["skipped"] == 2, p
    codes = {e["file"]: e["code"] for e in p["errors"]}
    assert codes == {"handbook/photo.png": "unsupported_type", "handbook/empty.txt": "invalid"}

    # A file that turns into garbage fails, and its last good version stays searchable.
    write(folder / "leave.md", "", bump=5)
    again = client.post("/v1/jobs", json={"type": "reindex"}).json()
    run_jobs.run_until_idle()
    p = job(client, again["id"])["progress"]
    assert p["failed"] == 1
    leave = [d for d in client.get("/v1/documents").json()["items"] if "leave" in d["filename"]]
    assert leave[0]["status"] == "failed" and leave[0]["error_code"] == "invalid"
    hits = client.post("/v1/search", json={"query": "annual leave carry over"}).json()["hits"]
    assert hits[0]["filename"] == "handbook/leave.md"


def test_remove_source_deletes_or_keeps_its_documents(
    client: TestClient,
    run_jobs: Worker,
    folder: Path,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    other = settings.source_root_paths[0] / "other"
    write(other / "a.txt", "Alpha is the first letter.\n")
    s1 = client.post("/v1/collections/default/sources", json={"path": str(folder)}).json()
    s2 = client.post("/v1/collections/default/sources", json={"path": str(other)}).json()
    run_jobs.run_until_idle()
    assert client.delete(f"/v1/sources/{s1['source']['id']}").json() == {"documents": 3}
    r = client.delete(f"/v1/sources/{s2['source']['id']}", params={"keep_documents": "true"})
    assert r.status_code == 202
    run_jobs.run_until_idle()
    items = client.get("/v1/documents").json()["items"]
    assert [(d["filename"], d["source_id"]) for d in items] == [("other/a.txt", None)]
    assert client.delete(f"/v1/documents/{items[0]['id']}").status_code == 202  # ordinary now
    assert client.get(f"/v1/sources/{s1['source']['id']}").status_code == 404


def test_searches_see_the_old_version_until_the_new_one_commits(
    client: TestClient,
    container: Container,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    import threading

    folder = settings.source_root_paths[0] / "fruit"
    write(folder / "b.txt", "Bananas are yellow when ripe.\n")
    client.post("/v1/collections/default/sources", json={"path": str(folder)})
    Worker(container, holder="w").run_until_idle()
    write(folder / "b.txt", "Bananas are green before they ripen.\n", bump=5)
    job_id = client.post("/v1/jobs", json={"type": "reindex"}).json()["id"]

    paused, resume = threading.Event(), threading.Event()

    def on_step(step: str) -> None:
        if step == "before_sql_commit" and not paused.is_set():
            paused.set()
            assert resume.wait(60)

    runner = threading.Thread(target=Worker(container, holder="w", on_step=on_step).run_until_idle)
    runner.start()
    try:
        assert paused.wait(60)
        # The new version is parsed and embedded, its commit not yet made: readers see the old.
        hits = client.post("/v1/search", json={"query": "bananas", "top_k": 5}).json()["hits"]
        assert [h["text"].strip() for h in hits] == ["Bananas are yellow when ripe."]
        assert job(client, job_id)["status"] == "running"
    finally:
        resume.set()
        runner.join(60)
    hits = client.post("/v1/search", json={"query": "bananas", "top_k": 5}).json()["hits"]
    assert [h["text"].strip() for h in hits] == ["Bananas are green before they ripen."]


def test_jobs_api_lists_filters_and_refuses_what_it_cannot_run(
    client: TestClient, run_jobs: Worker, folder: Path
) -> None:
    r = client.post("/v1/jobs", json={"type": "reindex"})
    assert r.status_code == 422 and "watches no folders" in r.json()["message"]
    assert client.post("/v1/jobs", json={"type": "rebuild"}).status_code == 422
    client.post("/v1/documents", files={"file": ("x.txt", b"Some uploaded text.\n")})
    first = client.post("/v1/collections/default/sources", json={"path": str(folder)}).json()
    # Asking again while a sync is queued returns that job instead of a second one.
    again = client.post("/v1/jobs", json={"type": "reindex", "source_id": first["source"]["id"]})
    assert again.status_code == 202 and again.json()["id"] == first["job"]["id"]
    assert client.post("/v1/jobs", json={"type": "reindex", "source_id": 999}).status_code == 404
    run_jobs.run_until_idle()
    items = client.get("/v1/jobs").json()["items"]
    assert [j["type"] for j in items] == ["reindex", "ingest"]  # newest first
    assert all(j["status"] == "succeeded" and j["worker"] == "test-worker" for j in items)
    only = client.get("/v1/jobs", params={"type": "ingest"}).json()["items"]
    assert [j["type"] for j in only] == ["ingest"]
    page = client.get("/v1/jobs", params={"limit": 1}).json()
    nxt = client.get("/v1/jobs", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [j["id"] for j in page["items"] + nxt["items"]] == [j["id"] for j in items]
    assert client.get("/v1/jobs/999").status_code == 404
    assert client.get("/v1/jobs", params={"status": "bogus"}).status_code == 422


def test_sources_over_http_list_change_pause_and_refuse(
    client: TestClient, folder: Path, tmp_path: Path
) -> None:
    r = client.post("/v1/collections/default/sources", json={"path": str(tmp_path)})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = client.post("/v1/collections/default/sources", json={"path": str(folder), "schedule": "x"})
    assert r.status_code == 422 and "cron" in r.json()["message"]
    r = client.post("/v1/collections/nope/sources", json={"path": str(folder)})
    assert r.status_code == 404
    src = client.post(
        "/v1/collections/default/sources",
        json={"path": str(folder), "schedule": "0 9 * * 1-5", "timezone": "Asia/Shanghai"},
    ).json()["source"]
    assert src["next_run_at"].endswith(("01:00:00Z", "01:00:00+00:00"))
    listed = client.get("/v1/collections/default/sources").json()["items"]
    assert [s["id"] for s in listed] == [src["id"]]
    paused = client.patch(f"/v1/sources/{src['id']}", json={"paused": True}).json()
    assert paused["paused"] is True and paused["schedule"] == "0 9 * * 1-5"
    cleared = client.patch(f"/v1/sources/{src['id']}", json={"schedule": None}).json()
    assert cleared["schedule"] is None and cleared["next_run_at"] is None
    r = client.patch(f"/v1/sources/{src['id']}", json={"timezone": "Nowhere/Land"})
    assert r.status_code == 422
    assert client.patch("/v1/sources/999", json={"paused": False}).status_code == 404
