"""Upload → index → search through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import io

import openpyxl
import pptx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.container import Container
from api.worker import Worker
from data.models import Chunk, Document
from tests.helpers import make_docx

HANDBOOK = (
    b"# Staff handbook\n\nWelcome to the company.\n\n"
    b"## Holidays\n\nEvery employee receives thirty days of paid leave each calendar year.\n\n"
    b"## Expenses\n\nTaxi receipts must be submitted within two weeks of travel.\n"
)


def upload(client: TestClient, name: str, data: bytes, **form: str) -> tuple[int, dict]:
    r = client.post("/v1/documents", files={"file": (name, data)}, data=form)
    return r.status_code, r.json()


def test_markdown_upload_is_indexed_and_searchable_with_heading(
    client: TestClient, run_jobs: Worker
) -> None:
    status, body = upload(client, "handbook.md", HANDBOOK)
    assert status == 202 and body["status"] == "queued"
    run_jobs.run_until_idle()
    doc = client.get(f"/v1/documents/{body['id']}").json()
    assert doc["status"] == "indexed" and doc["chunk_count"] >= 1 and doc["pages"] is None
    hits = client.post(
        "/v1/search", json={"query": "how long to hand in taxi receipts", "top_k": 3}
    ).json()["hits"]
    assert hits[0]["filename"] == "handbook.md"
    assert "Taxi receipts" in hits[0]["text"]
    assert -1.0 <= hits[0]["score"] <= 1.0


def test_docx_headings_reach_search_hits(client: TestClient, run_jobs: Worker) -> None:
    parts = [("Heading 1", "Safety manual"), ("", "General rules apply everywhere.")]
    for i in range(12):
        parts.append(("Heading 2", f"Section {i}"))
        parts.append(("", f"Filler paragraph number {i} about nothing in particular. " * 8))
    parts += [
        ("Heading 2", "Forklifts"),
        ("", "Only certified drivers may operate the yellow forklift in hall B."),
    ]
    status, body = upload(client, "safety.docx", make_docx(parts))
    assert status == 202
    run_jobs.run_until_idle()
    assert client.get(f"/v1/documents/{body['id']}").json()["status"] == "indexed"
    hit = client.post("/v1/search", json={"query": "who may drive the forklift"}).json()["hits"][0]
    assert "yellow forklift" in hit["text"]
    assert hit["heading"] == "Safety manual > Forklifts"
    assert hit["page_start"] is None


def _deck() -> bytes:
    deck = pptx.Presentation()
    for title, body in [("Welcome", "Agenda for today."), ("Parking", "Bikes go to lot C.")]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text_frame.text = body
        # Notes long enough that each slide is a chunk of its own.
        slide.notes_slide.notes_text_frame.text = f"Talking points on {title}. " * 60
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def _workbook() -> bytes:
    book = openpyxl.Workbook()
    book.active.title = "Rooms"
    book.active.append(["Room", "Seats", "Projector"])
    book.active.append(["Aurora", 12, "yes"])
    book.active.append(["Borealis", 40, "no"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_pptx_and_xlsx_uploads_are_indexed_and_searchable(
    client: TestClient, run_jobs: Worker
) -> None:
    deck_status, deck = upload(client, "town-hall.pptx", _deck())
    book_status, book = upload(client, "rooms.xlsx", _workbook())
    assert (deck_status, book_status) == (202, 202)
    run_jobs.run_until_idle()
    deck_doc = client.get(f"/v1/documents/{deck['id']}").json()
    assert deck_doc["status"] == "indexed" and deck_doc["pages"] == 2
    assert deck_doc["media_type"].endswith("presentationml.presentation")
    assert client.get(f"/v1/documents/{book['id']}").json()["status"] == "indexed"
    hit = client.post("/v1/search", json={"query": "where do bikes park"}).json()["hits"][0]
    assert hit["filename"] == "town-hall.pptx" and "lot C" in hit["text"]
    assert hit["page_start"] == 2 and hit["heading"].startswith("Parking")
    hit = client.post("/v1/search", json={"query": "room Borealis seats"}).json()["hits"][0]
    assert hit["filename"] == "rooms.xlsx" and "| Borealis | 40 | no |" in hit["text"]
    assert hit["heading"] == "Rooms"


def test_same_name_same_bytes_is_a_noop_and_new_bytes_conflict(
    client: TestClient, run_jobs: Worker
) -> None:
    _, first = upload(client, "handbook.md", HANDBOOK)
    run_jobs.run_until_idle()
    status, again = upload(client, "handbook.md", HANDBOOK)
    assert status == 200 and again["id"] == first["id"] and again["status"] == "indexed"
    status, err = upload(client, "handbook.md", HANDBOOK + b"\nNew rule.\n")
    assert status == 409 and err["error"] == "conflict"


def test_replace_swaps_content(client: TestClient, run_jobs: Worker, container: Container) -> None:
    _, first = upload(client, "notes.txt", b"The launch code is PINEAPPLE.\n")
    run_jobs.run_until_idle()
    status, body = upload(client, "notes.txt", b"The launch code is MANGO now.\n", replace="true")
    assert status == 202 and body["id"] == first["id"]
    # Until the worker runs, the old version is still what search sees.
    hits = client.post("/v1/search", json={"query": "launch code"}).json()["hits"]
    assert [h["text"] for h in hits] == ["The launch code is PINEAPPLE."]
    run_jobs.run_until_idle()
    hits = client.post("/v1/search", json={"query": "launch code"}).json()["hits"]
    assert [h["text"] for h in hits] == ["The launch code is MANGO now."]
    r = client.put(f"/v1/documents/{first['id']}", files={"file": ("x", b"Code: KIWI.\n")})
    assert r.status_code == 202 and r.json()["filename"] == "notes.txt"
    run_jobs.run_until_idle()
    hits = client.post("/v1/search", json={"query": "launch code"}).json()["hits"]
    assert [h["text"] for h in hits] == ["Code: KIWI."]
    with container.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Chunk)) == 1
    # The replaced originals are gone from disk; the current one downloads.
    assert client.get(f"/v1/documents/{first['id']}/file").content == b"Code: KIWI.\n"
    root = container.blobs.root
    stored = [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp"]
    assert len(stored) == 1


def test_same_bytes_new_name_reuses_embeddings(
    settings,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    from api.app import create_app
    from api.container import build_container
    from tests.helpers import CountingEmbedder

    counting = CountingEmbedder(embedder)
    container = build_container(settings, embedder=counting)  # type: ignore[arg-type]
    worker = Worker(container)
    with TestClient(create_app(container=container)) as client:
        _, a = upload(client, "a.md", HANDBOOK)
        worker.run_until_idle()
        embedded = counting.passages
        assert embedded >= 1
        status, b = upload(client, "copy-of-a.md", HANDBOOK)
        assert status == 202 and b["id"] != a["id"]
        worker.run_until_idle()
        assert counting.passages == embedded  # nothing embedded again
        doc = client.get(f"/v1/documents/{b['id']}").json()
        assert doc["status"] == "indexed" and doc["chunk_count"] >= 1
        hits = client.post("/v1/search", json={"query": "paid leave", "top_k": 2}).json()["hits"]
        assert {h["filename"] for h in hits} == {"a.md", "copy-of-a.md"}
    container.close()


def test_bad_bytes_are_refused_at_once(client: TestClient, container: Container) -> None:
    assert upload(client, "pic.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)[0] == 415
    assert upload(client, "empty.txt", b"")[0] == 422
    assert upload(client, "a.txt", b"hi", collection="nope")[0] == 404
    assert client.get("/v1/documents/999").status_code == 404
    assert client.delete("/v1/documents/999").status_code == 404
    with container.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 0
    stored = [p for p in container.blobs.root.rglob("*") if p.is_file()]
    assert stored == []


def test_upload_over_the_limit_is_413(tmp_path, db_url, embedder) -> None:  # type: ignore[no-untyped-def]
    from api.app import create_app
    from api.container import build_container
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "h", db_url, ingest={"max_upload_mb": 0.1})
    container = build_container(settings, embedder=embedder)
    with TestClient(create_app(container=container)) as client:
        status, body = upload(client, "big.txt", b"word " * 30_000)  # 150 kB
        assert status == 413 and body["error"] == "too_large"
        assert upload(client, "small.txt", b"word " * 100)[0] == 202
    container.close()


def test_failed_parse_ends_failed_with_code(client: TestClient, run_jobs: Worker) -> None:
    _, blank = upload(client, "blank.txt", b"   \n\n\t  \n")
    _, good = upload(client, "good.txt", b"The cafeteria opens at eight.\n")
    run_jobs.run_until_idle()
    failed = client.get(f"/v1/documents/{blank['id']}").json()
    assert failed["status"] == "failed" and failed["error_code"] == "no_text"
    assert failed["error"]
    assert client.get(f"/v1/documents/{good['id']}").json()["status"] == "indexed"


def test_list_pages_with_cursor(client: TestClient) -> None:
    ids = [upload(client, f"f{i}.txt", f"file {i}\n".encode())[1]["id"] for i in range(3)]
    page1 = client.get("/v1/documents", params={"limit": 2}).json()
    assert [d["id"] for d in page1["items"]] == ids[:2] and page1["next_cursor"]
    page2 = client.get("/v1/documents", params={"limit": 2, "cursor": page1["next_cursor"]})
    assert [d["id"] for d in page2.json()["items"]] == ids[2:]
    assert page2.json()["next_cursor"] is None
    assert client.get("/v1/documents", params={"limit": 501}).status_code == 422
    assert client.get("/v1/documents", params={"cursor": "garbage!"}).status_code == 422
    assert client.get("/v1/documents", params={"collection": "nope"}).status_code == 404
    only = client.get("/v1/documents", params={"collection": "default"}).json()["items"]
    assert len(only) == 3


def test_download_returns_the_original(client: TestClient) -> None:
    data = "Grüße aus Köln\n".encode("cp1252")
    _, body = upload(client, "gruss.txt", data)
    r = client.get(f"/v1/documents/{body['id']}/file")
    assert r.status_code == 200 and r.content == data
    assert "gruss.txt" in r.headers["content-disposition"]


def test_delete_hides_at_once_then_removes_everything(
    client: TestClient, run_jobs: Worker, container: Container
) -> None:
    _, body = upload(client, "handbook.md", HANDBOOK)
    _, other = upload(client, "other.txt", b"Parking is free on Sundays.\n")
    run_jobs.run_until_idle()
    r = client.delete(f"/v1/documents/{body['id']}")
    assert r.status_code == 202 and r.json()["status"] == "deleting"
    hits = client.post("/v1/search", json={"query": "paid leave holidays"}).json()["hits"]
    assert all(h["document_id"] != body["id"] for h in hits)
    run_jobs.run_until_idle()
    assert client.get(f"/v1/documents/{body['id']}").status_code == 404
    with container.sessions() as s:
        left = s.scalars(select(Chunk.document_id)).all()
        assert set(left) == {other["id"]}
        coll_id = s.scalar(select(Document.collection_id))
        idx = container.indexes.current(s, coll_id, 1, container.embedder.dim)
        assert idx.ntotal == len(left)
    assert client.get(f"/v1/documents/{other['id']}").json()["status"] == "indexed"


def test_citation_of_a_deleted_document_never_names_a_later_upload(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    """The probe: leave.txt is cited, then deleted; sales.txt, uploaded to another
    collection, must not take its id, and the old citation must say its document is gone."""
    from api.app import create_app
    from api.container import build_container
    from tests.helpers import ScriptedChatModel

    scripted = ScriptedChatModel("Employees receive thirty days of paid leave each year [1].")
    container = build_container(settings, embedder=embedder, chat_model=scripted)
    leave_txt = b"Every employee receives thirty days of paid leave each calendar year.\n"
    with TestClient(create_app(container=container)) as client:
        _, leave = upload(client, "leave.txt", leave_txt)
        Worker(container).run_until_idle()
        body = client.post("/v1/chat", json={"message": "How much paid leave?"}).json()
        assert [c["document_id"] for c in body["citations"]] == [leave["id"]]
        assert client.delete(f"/v1/documents/{leave['id']}").status_code == 202
        Worker(container).run_until_idle()
        assert client.post("/v1/collections", json={"name": "sales"}).status_code == 201
        _, sales = upload(client, "sales.txt", b"Sales grew by four percent.\n", collection="sales")
        Worker(container).run_until_idle()
        stored = client.get(f"/v1/conversations/{body['conversation_id']}").json()
    container.close()
    assert sales["id"] != leave["id"]
    [cite] = stored["messages"][1]["citations"]
    assert cite["filename"] == "leave.txt" and "thirty days" in cite["quote"]
    assert cite["document_id"] is None and cite["chunk_id"] is None


def test_delete_while_queued_never_indexes(client: TestClient, run_jobs: Worker) -> None:
    _, body = upload(client, "late.txt", b"This should never be searchable.\n")
    assert client.delete(f"/v1/documents/{body['id']}").status_code == 202
    run_jobs.run_until_idle()
    assert client.get(f"/v1/documents/{body['id']}").status_code == 404
    assert client.post("/v1/search", json={"query": "searchable"}).json()["hits"] == []


def test_streamed_body_without_length_is_cut_off_at_the_limit(tmp_path, db_url, embedder) -> None:  # type: ignore[no-untyped-def]
    from api.app import create_app
    from api.container import build_container
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "h", db_url, ingest={"max_upload_mb": 0.1})
    container = build_container(settings, embedder=embedder)

    def body():  # type: ignore[no-untyped-def]
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        for _ in range(1000):  # 1 MB, chunked: no Content-Length to judge by
            yield b"x" * 1000
        yield b"\r\n--b--\r\n"

    with TestClient(create_app(container=container)) as client:
        r = client.post(
            "/v1/documents",
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert r.status_code == 413 and r.json()["error"] == "too_large"
    container.close()


def test_body_limit_stops_reading_mid_stream() -> None:
    """The middleware answers 413 as soon as the limit is passed, without draining the body."""
    import anyio

    from api.app import BodyLimit

    reads = 0
    sent: list[dict] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        while (await receive())["type"] != "http.disconnect":
            pass
        await send({"type": "http.response.start", "status": 400, "headers": []})

    async def receive():  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 10_000, "more_body": True}

    async def send(msg):  # type: ignore[no-untyped-def]
        sent.append(msg)

    scope = {"type": "http", "method": "POST", "headers": [], "path": "/v1/documents"}
    anyio.run(BodyLimit(app, max_bytes=100_000), scope, receive, send)
    assert sent[0]["status"] == 413 and len(sent) == 2  # the app's late 400 was dropped
    assert reads == 17  # (100 kB + 64 kB slack) / 10 kB, then it stopped reading
