"""Every error answers {"error", "message"}: routing, validation, size limits, the unexpected;
ids too large for SQL are refused; the docs pages load nothing from another host."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container, build_container
from retrieval.embedder import Embedder
from tests.conftest import make_settings

# HTTP-only behaviour: one database is enough; ids and cursors reach SQL and run on both.
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
HUGE_IDS = [2**31, 2**63, 10**30]  # PostgreSQL INTEGER ids end at 2**31 - 1
ID_PATHS = [
    ("GET", "/v1/documents/{}"),
    ("GET", "/v1/documents/{}/file"),
    ("DELETE", "/v1/documents/{}"),
    ("GET", "/v1/jobs/{}"),
    ("GET", "/v1/sources/{}"),
    ("DELETE", "/v1/sources/{}"),
    ("GET", "/v1/conversations/{}"),
]


def assert_error_body(r, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"] == code and isinstance(body["message"], str) and body["message"]
    assert "detail" not in body
    return body


@SQLITE_ONLY
def test_unknown_route_is_404_with_the_error_body(client: TestClient) -> None:
    assert_error_body(client.get("/v1/nothing-here"), 404, "not_found")
    assert_error_body(client.get("/docs-static/missing.js"), 404, "not_found")


@SQLITE_ONLY
def test_wrong_method_is_405_naming_every_method_of_the_path(client: TestClient) -> None:
    # Starlette named only the first matching route's methods (here GET, not DELETE).
    r = client.patch("/v1/collections/default")
    assert_error_body(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "DELETE, GET"
    r = client.options("/v1/sources/1")
    assert_error_body(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "DELETE, GET, PATCH"
    assert client.put("/v1/search").headers["allow"] == "POST"


@SQLITE_ONLY
def test_validation_error_is_422_with_a_short_message(client: TestClient) -> None:
    body = assert_error_body(
        client.post("/v1/collections", json={"name": "no spaces"}), 422, "invalid"
    )
    assert body["message"].startswith("body.name: String should match pattern")
    json = {"content-type": "application/json"}
    r = client.post("/v1/search", content=b"{not json", headers=json)
    assert "JSON" in assert_error_body(r, 422, "invalid")["message"]


@SQLITE_ONLY
def test_a_huge_input_is_not_echoed_back(client: TestClient) -> None:
    big = "x" * 800_000  # under the 1 MB body limit, over the 10,000-character query limit
    r = client.post("/v1/search", json={"query": big, "top_k": big[:100_000]})
    body = assert_error_body(r, 422, "invalid")
    assert len(r.content) < 2_000 and "xxxxxxxxxx" not in body["message"]
    r = client.get("/v1/documents", params={"limit": "9" * 60_000})  # httpx: < 64 kB
    assert_error_body(r, 422, "invalid")
    assert len(r.content) < 2_000
    # Many errors at once: the first few are named, the rest counted.
    r = client.post("/v1/search", json={"query": "q", "collections": [1] * 1000})
    assert "and 995 more" in assert_error_body(r, 422, "invalid")["message"]


@SQLITE_ONLY
def test_a_1mb_query_gets_a_short_422(tmp_path: Path, db_url: str, embedder: Embedder) -> None:
    settings = make_settings(tmp_path / "h", db_url, max_json_mb=4)
    container = build_container(settings, embedder=embedder)
    with TestClient(create_app(container=container)) as client:
        r = client.post("/v1/search", json={"query": "q" * 1_000_000})
        assert_error_body(r, 422, "invalid")
        assert len(r.content) < 2_000
    container.close()


@pytest.mark.parametrize("id_", HUGE_IDS)
def test_ids_beyond_the_database_are_422_not_500(client: TestClient, id_: int) -> None:
    for method, path in ID_PATHS:
        assert_error_body(client.request(method, path.format(id_)), 422, "invalid")
    r = client.patch(f"/v1/sources/{id_}", json={"paused": True})
    assert_error_body(r, 422, "invalid")
    r = client.post("/v1/search", json={"query": "q", "filters": {"document_ids": [id_]}})
    assert_error_body(r, 422, "invalid")
    r = client.post("/v1/search", json={"query": "q", "filters": {"page_from": id_}})
    assert_error_body(r, 422, "invalid")
    r = client.post("/v1/chat", json={"message": "hi", "conversation_id": id_})
    assert_error_body(r, 422, "invalid")
    r = client.post("/v1/jobs", json={"type": "reindex", "source_id": id_})
    assert_error_body(r, 422, "invalid")
    r = client.put(f"/v1/documents/{id_}", files={"file": ("a.txt", b"hello")})
    assert_error_body(r, 422, "invalid")


def test_ids_inside_the_range_are_404(client: TestClient) -> None:
    for method, path in ID_PATHS:
        assert_error_body(client.request(method, path.format(2**31 - 1)), 404, "not_found")
    for bad in (0, -1, -(2**63)):
        assert_error_body(client.get(f"/v1/documents/{bad}"), 422, "invalid")


def test_a_nul_character_is_422_not_500(client: TestClient) -> None:
    # PostgreSQL text cannot hold NUL; SQLite can (there the name is simply not found).
    for r in (
        client.get("/v1/collections/a%00b"),
        client.get("/v1/documents", params={"collection": "a\x00b"}),
        client.post("/v1/search", json={"query": "q", "collections": ["a\x00b"]}),
        client.post("/v1/jobs", json={"type": "reindex", "collection": "a\x00b"}),
    ):
        assert r.status_code in (404, 422), r.text
        assert set(r.json()) == {"error", "message"} and "SELECT" not in r.text
    r = client.post("/v1/collections", json={"name": "notes", "description": "a\x00b"})
    assert r.status_code in (201, 422), r.text


def test_a_cursor_beyond_the_database_is_422(client: TestClient) -> None:
    import base64

    for id_ in HUGE_IDS:
        cursor = base64.urlsafe_b64encode(f"id:{id_}".encode()).decode().rstrip("=")
        for path in ("/v1/documents", "/v1/jobs", "/v1/collections", "/v1/conversations"):
            r = client.get(path, params={"cursor": cursor})
            assert_error_body(r, 422, "invalid")


def _stream(total: int) -> Iterator[bytes]:
    yield b'{"paused": true, "include": ["'
    for _ in range(total // 10_000):
        yield b"x" * 10_000
    yield b'"]}'


@SQLITE_ONLY
def test_json_bodies_of_every_method_are_capped(client: TestClient) -> None:
    """A 300 MB PATCH once grew the API to 3.5 GB: every method now has a limit."""
    two_mb = {"include": ["x" * 2_000_000]}
    r = client.patch("/v1/sources/1", json=two_mb)
    assert "1 MB" in assert_error_body(r, 413, "too_large")["message"]
    # No Content-Length to judge by: cut off while it streams.
    r = client.patch("/v1/sources/1", content=_stream(2_000_000))
    assert_error_body(r, 413, "too_large")
    assert_error_body(client.post("/v1/search", json={"query": "q" * 2_000_000}), 413, "too_large")
    # A multipart body to a JSON route gets the JSON limit, not the upload one.
    r = client.post("/v1/search", files={"file": ("a.txt", b"x" * 2_000_000)})
    assert_error_body(r, 413, "too_large")
    # Uploads keep the upload limit (100 MB by default).
    r = client.post("/v1/documents", files={"file": ("big.txt", b"word " * 400_000)})
    assert r.status_code == 202, r.text


@SQLITE_ONLY
def test_an_unexpected_error_is_500_without_a_traceback(container: Container) -> None:
    app = create_app(container=container)

    def boom() -> None:
        raise RuntimeError("secret internals at /srv/grounded")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        body = assert_error_body(client.get("/boom"), 500, "internal")
    assert "secret" not in body["message"] and "Traceback" not in body["message"]


@SQLITE_ONLY
def test_the_schema_documents_every_error_as_the_error_body(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    ref = {"$ref": "#/components/schemas/ErrorOut"}
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
            if op.get("parameters") or op.get("requestBody"):
                assert "422" in errors, (method, path)
            for status, resp in errors.items():
                if path == "/readyz":  # its 503 carries the worker details beside the two keys
                    continue
                assert resp["content"]["application/json"]["schema"] == ref, (method, path, status)
    assert "404" in schema["paths"]["/v1/documents/{document_id}"]["get"]["responses"]
    assert "429" in schema["paths"]["/v1/chat"]["post"]["responses"]


@SQLITE_ONLY
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_this_server(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    refs = re.findall(r"""(?:src|href|url|spec-url)\s*[=:]\s*["']([^"']+)["']""", r.text)
    assert refs and not [u for u in refs if re.match(r"(https?:)?//", u)], refs
    assert "http://" not in r.text and "https://" not in r.text
    if page == "/docs":
        assert '"validatorUrl": null' in r.text  # no call to validator.swagger.io
    assert "/openapi.json" in refs
    for url in refs:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1_000, url
