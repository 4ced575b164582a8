"""Citation → source view through the app with keys on, on SQLite and PostgreSQL: the
passage with its context and boxes, page images with caching, and access as for documents."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.container import bounded_chat_model, build_container
from api.worker import Worker
from data.keys import create_key
from data.scope import Role
from ingest.parsers.pdf import parse
from retrieval.embedder import Embedder
from tests.conftest import make_settings
from tests.helpers import ScriptedChatModel, make_pdf

REPORT = make_pdf(
    [
        ["Quarterly report", "Revenue in Asia grew by"],
        ["twelve percent in the third quarter.", "Costs were flat across all regions."],
    ]
)
REPORT_TEXT = parse(REPORT).text
REPLY = "Revenue in Asia grew by twelve percent in the third quarter [1]."
NOTES = b"# Notes\n\nThe canteen opens at eight. Lunch is served at noon.\n"


@dataclass
class Served:
    client: TestClient
    admin: dict[str, str]
    reader: dict[str, str]  # may read "finance" only
    pdf_id: int
    md_id: int  # in "default"


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def served(tmp_path: Path, db_url: str, embedder: Embedder) -> Iterator[Served]:
    """A report PDF in "finance" and notes in "default", indexed, with keys on."""
    settings = make_settings(tmp_path / "home", db_url, auth={"enabled": True})
    model = bounded_chat_model(settings, ScriptedChatModel(REPLY))
    container = build_container(settings, embedder=embedder, chat_model=model)
    with container.sessions() as s:
        admin = _bearer(create_key(s, name="admin", role=Role.ADMIN).key)
        reader = _bearer(create_key(s, name="r", role=Role.READER, collections=["finance"]).key)
    with TestClient(create_app(container=container)) as client:
        assert client.post("/v1/collections", json={"name": "finance"}, headers=admin).is_success
        ids = []
        for name, data, coll in (("report.pdf", REPORT, "finance"), ("notes.md", NOTES, "default")):
            form = {"collection": coll}
            r = client.post("/v1/documents", files={"file": (name, data)}, data=form, headers=admin)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        Worker(container).run_until_idle()
        yield Served(client, admin, reader, *ids)
    container.close()


def _passage(s: Served, doc: int, start: int, end: int, key: dict[str, str]) -> dict:
    r = s.client.get(f"/v1/documents/{doc}/passage?start={start}&end={end}", headers=key)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_span_over_the_page_break_has_boxes_on_both_pages(served: Served) -> None:
    start = REPORT_TEXT.index("grew by")
    end = REPORT_TEXT.index("twelve percent") + len("twelve percent")
    body = _passage(served, served.pdf_id, start, end, served.reader)
    assert body["text"] == "grew by\n\ntwelve percent"
    assert body["before"] == REPORT_TEXT[:start]
    assert body["after"] == REPORT_TEXT[end:]
    assert (body["filename"], body["media_type"]) == ("report.pdf", "application/pdf")
    assert (body["page_count"], body["page_start"], body["page_end"]) == (2, 1, 2)
    assert body["renderable"] is True and body["unrenderable_reason"] is None
    first, second = body["pages"]
    assert (first["page"], first["width"], first["height"]) == (1, 612.0, 792.0)
    # "grew by": the end of page 1's second line; "twelve percent": page 2's first line.
    [(x0, y0, x1, y1)] = first["boxes"]
    assert 0.25 < x0 < x1 < 0.5 and 0.1 < y0 < y1 < 0.15
    [(x0, y0, x1, y1)] = second["boxes"]
    assert 0.1 < x0 < 0.13 and x1 < 0.35 and 0.07 < y0 < y1 < 0.11


def test_chat_citations_and_evidence_open_at_their_quotes_now_and_later(served: Served) -> None:
    body = {"message": "How much did revenue in Asia grow?", "collections": ["finance"]}
    r = served.client.post("/v1/chat", json=body, headers=served.reader)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["mode"] == "generated" and answer["citations"], answer
    stored = served.client.get(
        f"/v1/conversations/{answer['conversation_id']}", headers=served.reader
    ).json()
    [reply] = [m for m in stored["messages"] if m["role"] == "assistant"]
    for quote in (*answer["evidence"], *answer["citations"], *reply["citations"]):
        doc, start, end = quote["document_id"], quote["doc_start"], quote["doc_end"]
        passage = _passage(served, doc, start, end, served.reader)
        assert passage["text"] == quote["quote"]
        assert passage["page_start"] == quote["page_start"]
        assert passage["pages"] and all(p["boxes"] for p in passage["pages"])


def test_another_collections_document_answers_as_a_missing_one(served: Served) -> None:
    for path in ("passage?start=0&end=5", "pages/1/image"):
        hidden = served.client.get(f"/v1/documents/{served.md_id}/{path}", headers=served.reader)
        missing = served.client.get(f"/v1/documents/2000000/{path}", headers=served.reader)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["error"] == missing.json()["error"] == "not_found"
        assert "notes" not in hidden.text and "canteen" not in hidden.text
    assert served.client.get(f"/v1/documents/{served.pdf_id}/pages/1/image").status_code == 401


def test_a_page_image_has_the_asked_width_and_revalidates_by_etag(served: Served) -> None:
    url = f"/v1/documents/{served.pdf_id}/pages/2/image"
    r = served.client.get(url, headers=served.reader)
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "WEBP" and image.width == 900
    assert r.headers["cache-control"].startswith("private, max-age=")
    assert r.headers["vary"] == "Authorization"
    etag = r.headers["etag"]
    again = served.client.get(url, headers={**served.reader, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    png = served.client.get(f"{url}?width=300&format=png", headers=served.reader)
    assert png.headers["content-type"] == "image/png" and png.headers["etag"] != etag
    assert Image.open(io.BytesIO(png.content)).size[0] == 300
    stale = served.client.get(f"{url}?width=300", headers={**served.reader, "If-None-Match": etag})
    assert stale.status_code == 200
    for width, expected in ((50, 200), (9000, 2000)):
        r = served.client.get(f"{url}?width={width}&format=png", headers=served.reader)
        assert Image.open(io.BytesIO(r.content)).size[0] == expected


def test_a_page_beyond_the_document_is_404_and_page_zero_422(served: Served) -> None:
    r = served.client.get(f"/v1/documents/{served.pdf_id}/pages/3/image", headers=served.reader)
    assert r.status_code == 404 and "2 pages" in r.json()["message"]
    r = served.client.get(f"/v1/documents/{served.pdf_id}/pages/0/image", headers=served.reader)
    assert r.status_code == 422 and r.json()["error"] == "invalid"


def test_a_non_pdf_shows_its_text_and_has_no_page_images(served: Served) -> None:
    text = NOTES.decode().strip()
    start = text.index("Lunch")
    body = _passage(served, served.md_id, start, start + len("Lunch is served"), served.admin)
    assert body["text"] == "Lunch is served"
    assert body["before"].endswith("opens at eight. ") and body["after"].rstrip() == " at noon."
    assert body["heading"] == "Notes" and body["page_start"] is None
    assert body["pages"] == [] and body["renderable"] is False
    r = served.client.get(f"/v1/documents/{served.md_id}/pages/1/image", headers=served.admin)
    assert r.status_code == 409 and r.json()["error"] == "not_renderable"


def test_bad_ranges_are_422(served: Served) -> None:
    base = f"/v1/documents/{served.pdf_id}/passage"
    for query in ("?start=9&end=3", f"?start=0&end={len(REPORT_TEXT) + 1}", "?start=-1&end=3", ""):
        r = served.client.get(base + query, headers=served.reader)
        assert r.status_code == 422 and r.json()["error"] == "invalid", query


def test_a_document_not_indexed_yet_has_no_passage(served: Served) -> None:
    files = {"file": ("later.pdf", make_pdf([["Not indexed yet."]]))}
    r = served.client.post(
        "/v1/documents", files=files, data={"collection": "finance"}, headers=served.admin
    )
    doc = r.json()["id"]
    r = served.client.get(f"/v1/documents/{doc}/passage?start=0&end=3", headers=served.reader)
    assert r.status_code == 409 and "no text yet" in r.json()["message"]


def test_a_pdf_that_overruns_the_time_limit_is_503_and_its_passage_still_shows(
    tmp_path: Path, db_url: str, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path / "home", db_url, viewer={"timeout_s": 0.001})
    container = build_container(settings, embedder=embedder)
    with TestClient(create_app(container=container)) as client:
        doc = client.post("/v1/documents", files={"file": ("report.pdf", REPORT)}).json()["id"]
        Worker(container).run_until_idle()
        r = client.get(f"/v1/documents/{doc}/pages/1/image")
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        assert "took longer than" in r.json()["message"]
        body = client.get(f"/v1/documents/{doc}/passage?start=0&end=16").json()
        assert body["text"] == "Quarterly report" and body["page_start"] == 1
        assert body["renderable"] is False and "took longer" in body["unrenderable_reason"]
    container.close()
