"""Host and origin checks: DNS rebinding (a foreign Host) and forged cross-site writes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container
from api.worker import Worker
from data.models import Document, Job

ORIGINAL = b"# Policy\n\nVisitors sign in at the front desk.\n"
FORGED = b"# Policy\n\nVisitors may walk in anywhere.\n"


def test_host_must_be_a_configured_name(container: Container) -> None:
    app = create_app(container=container)
    for base in ("http://evil.example", "http://evil.example:8000", "http://10.0.0.7:8000"):
        with TestClient(app, base_url=base) as client:
            r = client.get("/healthz")
            assert r.status_code == 400, base
            assert r.json()["error"] == "bad_host" and r.json()["message"]
    # Loopback names and the bind host are always served (with any port).
    for base in ("http://localhost:8000", "http://127.0.0.1", "http://[::1]:8000"):
        with TestClient(app, base_url=base) as client:
            assert client.get("/healthz").status_code == 200, base
    anything = container.settings.model_copy(update={"allowed_hosts": "*"})
    with TestClient(create_app(anything, container=container), base_url="http://a.example") as c:
        assert c.get("/healthz").status_code == 200


def test_a_form_from_another_site_cannot_replace_a_document(
    client: TestClient, container: Container
) -> None:
    r = client.post("/v1/documents", files={"file": ("policy.md", ORIGINAL)})
    assert r.status_code == 202, r.text
    doc_id = r.json()["id"]
    Worker(container).run_until_idle()
    with container.sessions() as s:
        jobs_before = s.query(Job).count()
        hash_before = s.get(Document, doc_id).content_hash  # type: ignore[union-attr]
    # What an <form enctype="multipart/form-data" action=".../v1/documents"> on another
    # site sends: the browser adds its Origin (and Sec-Fetch-Site).
    forged = {"file": ("policy.md", FORGED)}
    cross = [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # a sandboxed page or a local file
        {"Origin": "http://testserver:8080"},  # the same name on another port
        {"Sec-Fetch-Site": "cross-site"},  # a browser that left Origin out
    ]
    for headers in cross:
        r = client.post("/v1/documents", files=forged, data={"replace": "true"}, headers=headers)
        assert r.status_code == 403, headers
        assert r.json()["error"] == "cross_origin" and r.json()["message"]
        r = client.put(f"/v1/documents/{doc_id}", files=forged, headers=headers)
        assert r.status_code == 403, headers
        assert client.delete(f"/v1/documents/{doc_id}", headers=headers).status_code == 403
    with container.sessions() as s:
        assert s.query(Job).count() == jobs_before  # nothing was queued
        assert s.get(Document, doc_id).content_hash == hash_before  # type: ignore[union-attr]
    assert client.get(f"/v1/documents/{doc_id}/file").content == ORIGINAL
    # Reading is not refused (no CORS header lets the other page see the answer).
    r = client.get(f"/v1/documents/{doc_id}", headers={"Origin": "http://evil.example"})
    assert r.status_code == 200


def test_same_origin_and_clients_without_origin_pass(
    client: TestClient, container: Container
) -> None:
    search = {"query": "front desk"}
    same = [
        {},  # curl, SDKs
        {"Origin": "http://testserver"},  # the server's own page
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
    ]
    for headers in same:
        assert client.post("/v1/search", json=search, headers=headers).status_code == 200
    app = create_app(container=container)
    with TestClient(app, base_url="http://localhost:8000") as local:
        r = local.post("/v1/search", json=search, headers={"Origin": "http://localhost:8000"})
        assert r.status_code == 200
        r = local.post("/v1/search", json=search, headers={"Origin": "http://localhost:3000"})
        assert r.status_code == 403
    # An origin the administrator lists may write (a wiki embedding the chat, say).
    listed = container.settings.model_copy(
        update={"allowed_origins": "https://wiki.example.com, http://localhost:3000"}
    )
    with TestClient(create_app(listed, container=container)) as c:
        for origin in ("https://wiki.example.com", "https://wiki.example.com:443"):
            r = c.post("/v1/search", json=search, headers={"Origin": origin})
            assert r.status_code == 200, origin
        r = c.post("/v1/search", json=search, headers={"Origin": "http://wiki.example.com"})
        assert r.status_code == 403  # another scheme is another origin
