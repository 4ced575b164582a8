"""Collections and health over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_default_exists_create_and_list(client: TestClient) -> None:
    names = [c["name"] for c in client.get("/v1/collections").json()["items"]]
    assert names == ["default"]
    r = client.post("/v1/collections", json={"name": "hr-2024", "description": "HR"})
    assert r.status_code == 201 and r.json()["embedder_model_id"] is None
    assert client.post("/v1/collections", json={"name": "hr-2024"}).status_code == 409
    assert client.post("/v1/collections", json={"name": "bad name!"}).status_code == 422
    page = client.get("/v1/collections", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"]


def test_unknown_collection_is_404_everywhere(client: TestClient) -> None:
    r = client.post("/v1/search", json={"query": "x", "collections": ["nope"]})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.post("/v1/documents", files={"file": ("a.txt", b"x")}, data={"collection": "nope"})
    assert r.status_code == 404
    assert client.get("/v1/documents", params={"collection": "nope"}).status_code == 404


def test_search_validates_input(client: TestClient) -> None:
    assert client.post("/v1/search", json={"query": ""}).status_code == 422
    assert client.post("/v1/search", json={"query": "x", "top_k": 0}).status_code == 422
    assert client.post("/v1/search", json={"query": "nothing indexed"}).json() == {"hits": []}


def test_collections_keep_their_documents_apart(client: TestClient, run_jobs) -> None:  # type: ignore[no-untyped-def]
    client.post("/v1/collections", json={"name": "legal"})
    client.post(
        "/v1/documents",
        files={"file": ("a.txt", b"The contract ends in May.\n")},
        data={"collection": "legal"},
    )
    client.post("/v1/documents", files={"file": ("b.txt", b"The canteen serves soup.\n")})
    run_jobs.run_until_idle()
    hits = client.post("/v1/search", json={"query": "contract", "collections": ["legal"]}).json()
    assert [h["filename"] for h in hits["hits"]] == ["a.txt"]
    both = client.post(
        "/v1/search", json={"query": "contract", "collections": ["legal", "default"]}
    ).json()["hits"]
    assert {h["collection"] for h in both} == {"legal", "default"}
    legal = client.get("/v1/collections").json()["items"][1]
    assert legal["embedder_model_id"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_collection_of_another_model_is_refused(client: TestClient, container) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from data.models import Collection

    with container.sessions() as s:
        s.execute(
            update(Collection).values(embedder_model_id="intfloat/e5-small", embedder_dim=384)
        )
        s.commit()
    r = client.post("/v1/search", json={"query": "x"})
    assert r.status_code == 409 and r.json()["error"] == "embedder_mismatch"
    assert "intfloat/e5-small" in r.json()["message"]
    r = client.post("/v1/documents", files={"file": ("a.txt", b"hello\n")})
    assert r.status_code == 409 and r.json()["error"] == "embedder_mismatch"
