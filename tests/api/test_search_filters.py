"""Metadata filters on search and chat: document ids, filename glob, page range."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from api.app import create_app
from api.container import build_container
from api.worker import Worker
from tests.conftest import FIXTURES
from tests.helpers import ScriptedChatModel

DOCS = {
    "hr/leave.md": b"# Leave\n\nEvery employee receives thirty days of paid leave each year.\n",
    "hr/parking.md": b"# Parking\n\nVisitors park in the north lot next to the loading bay.\n",
    "it/laptops.md": b"# Laptops\n\nLaptops are replaced every four years by the IT desk.\n",
    "it/vpn.md": b"# VPN\n\nThe VPN must be on when you work from home or travel.\n",
}


def index_all(client: TestClient, container) -> dict[str, int]:  # type: ignore[no-untyped-def]
    ids = {}
    for name, data in DOCS.items():
        ids[name] = client.post("/v1/documents", files={"file": (name, data)}).json()["id"]
    pdf = (FIXTURES / "pdf/pagelabels.pdf").read_bytes()
    ids["manual.pdf"] = client.post("/v1/documents", files={"file": ("manual.pdf", pdf)}).json()[
        "id"
    ]
    Worker(container).run_until_idle()
    return ids


def names(client: TestClient, query: str, top_k: int = 10, **filters: object) -> list[str]:
    body = {"query": query, "top_k": top_k, "filters": filters}
    r = client.post("/v1/search", json=body)
    assert r.status_code == 200, r.text
    return [h["filename"] for h in r.json()["hits"]]


def test_filters_narrow_search_inside_the_index(client: TestClient, container) -> None:  # type: ignore[no-untyped-def]
    ids = index_all(client, container)
    assert set(names(client, "paid leave days", filename="it/**")) == {"it/laptops.md", "it/vpn.md"}
    # The one allowed document ranks last overall, yet top_k=1 still finds it.
    assert names(client, "paid leave days", top_k=1, document_ids=[ids["it/vpn.md"]]) == [
        "it/vpn.md"
    ]
    both = names(client, "parking", filename="hr/*.md", document_ids=[ids["hr/leave.md"]])
    assert both == ["hr/leave.md"]
    assert names(client, "leave", filename="finance/**") == []
    r = client.post("/v1/search", json={"query": "x", "filters": {"filename": "../*"}})
    assert r.status_code == 422
    r = client.post("/v1/search", json={"query": "x", "filters": {"page_from": 0}})
    assert r.status_code == 422


def test_page_range_keeps_chunks_that_overlap_it(tmp_path, db_url, embedder) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings

    # Tiny chunks, so the 5-page PDF spreads over chunks of different pages.
    small = {"parse_timeout_s": 60.0, "chunk_tokens": 16, "chunk_overlap_tokens": 0}
    container = build_container(make_settings(tmp_path, db_url, ingest=small), embedder=embedder)
    with TestClient(create_app(container=container)) as client:
        index_all(client, container)
        body = {"query": "page", "top_k": 50, "filters": {"page_from": 2, "page_to": 3}}
        hits = client.post("/v1/search", json=body).json()["hits"]
        everything = client.post("/v1/search", json={"query": "page", "top_k": 50}).json()["hits"]
    container.close()
    assert hits and {h["filename"] for h in hits} == {"manual.pdf"}  # pageless docs drop out
    assert all(h["page_end"] >= 2 and h["page_start"] <= 3 for h in hits)
    pages = {(h["page_start"], h["page_end"]) for h in everything if h["filename"] == "manual.pdf"}
    assert any(end < 2 or start > 3 for start, end in pages)  # the filter removed those
    assert len(hits) < len([h for h in everything if h["filename"] == "manual.pdf"])


def test_chat_retrieves_only_within_the_filters(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    scripted = ScriptedChatModel("Visitors park in the north lot [1].")
    container = build_container(settings, embedder=embedder, chat_model=scripted)
    with TestClient(create_app(container=container)) as client:
        index_all(client, container)
        body = {"message": "Where do visitors park?", "filters": {"filename": "it/**"}}
        r = client.post("/v1/chat", json=body).json()
        # Only IT documents were allowed: the parking answer finds no support there.
        assert all(c["filename"].startswith("it/") for c in r["citations"])
        free = client.post("/v1/chat", json={"message": "Where do visitors park?"}).json()
        assert free["citations"][0]["filename"] == "hr/parking.md"
    container.close()


def test_an_adversarial_filename_glob_is_answered_at_once(client: TestClient, container) -> None:  # type: ignore[no-untyped-def]
    """A backtracking glob once held the GIL for over a minute, freezing every request."""
    deep = "a/" * 100 + "x.md"
    r = client.post("/v1/documents", files={"file": (deep, b"# Deep\n\nA deeply nested note.\n")})
    assert r.status_code == 202, r.text
    Worker(container).run_until_idle()
    assert names(client, "nested note", filename="**/x.md") == [deep]
    started = time.perf_counter()
    assert names(client, "nested note", filename="**/" * 5 + "x") == []
    assert time.perf_counter() - started < 2
    r = client.post("/v1/search", json={"query": "x", "filters": {"filename": "**/" * 200}})
    assert r.status_code == 422 and r.json()["error"] == "invalid" and r.json()["message"]
