"""The audit log through the app: a row for every action with the right fields, failed
authentication and role denials, keep_questions, GET /v1/audit, the export command, and
the worker's retention prune; no state-changing route without an audit declaration."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.audit import declared_action
from api.container import Container, bounded_chat_model, build_container
from api.worker import Worker
from data import audit
from data.audit import Action, Event, Outcome
from data.keys import create_key
from data.models import AuditEvent
from data.scope import Role
from retrieval.embedder import Embedder
from tests.api.test_cli import grounded
from tests.conftest import make_settings
from tests.helpers import ScriptedChatModel

LEAVE = b"# Leave\n\nEvery employee gets thirty days of paid leave a year.\n"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# GET routes that are audited all the same: they hand out a document's original file.
AUDITED_READS = {"/v1/documents/{document_id}/file"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _container(tmp_path: Path, db_url: str, embedder: Embedder, **audit_: Any) -> Container:
    (tmp_path / "sources" / "hr").mkdir(parents=True, exist_ok=True)
    settings = make_settings(
        tmp_path / "home",
        db_url,
        auth={"enabled": True},
        source_roots=str(tmp_path / "sources"),
        audit=audit_,
    )
    model = bounded_chat_model(settings, ScriptedChatModel("Thirty days of paid leave."))
    return build_container(settings, embedder=embedder, chat_model=model)


@pytest.fixture
def secured(tmp_path: Path, db_url: str, embedder: Embedder) -> Iterator[Container]:
    """Authentication and the audit log on (the product defaults), a scripted chat model."""
    c = _container(tmp_path, db_url, embedder)
    yield c
    c.close()


def new_key(c: Container, name: str, role: Role, collections: list[str] | None = None) -> str:
    with c.sessions() as s:
        return create_key(s, name=name, role=role, collections=collections).key


def events(c: Container) -> list[AuditEvent]:
    with c.sessions() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_state_changing_route_declares_an_action(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, "sqlite://"))
    declared: dict[str, Action] = {}
    # Every route as served, routers included (FastAPI resolves included routers lazily).
    routes = [r for r in iter_route_contexts(app.routes) if isinstance(r.original_route, APIRoute)]
    assert len(routes) > 30
    for route in routes:
        methods = set(getattr(route, "methods", None) or ())
        action = declared_action(route)
        if methods & STATE_CHANGING or route.path in AUDITED_READS:
            assert action is not None, f"{methods} {route.path} has no audited(...)"
        if action is not None:
            declared[f"{sorted(methods)} {route.path}"] = action
    # Every route action is declared once; the rest are recorded by get_scope/the middleware.
    route_actions = set(Action) - {Action.AUTH_FAILED, Action.ACCESS_DENIED}
    assert sorted(declared.values()) == sorted(route_actions)


def test_every_action_leaves_a_row_with_its_fields(secured: Container) -> None:
    admin = new_key(secured, "alice", Role.ADMIN)
    h = bearer(admin)
    sources = Path(secured.settings.source_roots) / "hr"
    (sources / "a.md").write_text("# A\n\nA folder file.\n")
    expected: list[tuple[Any, ...]] = []

    def call(method: str, url: str, action: Action, **kw: Any) -> Any:
        want = {k: kw.pop(k) for k in ("collection", "object_id", "summary", "hash") if k in kw}
        body = kw.pop("body", None)
        if body is not None:
            raw = json.dumps(body).encode()
            kw["content"] = raw
            kw.setdefault("headers", {})["content-type"] = "application/json"
            want.setdefault("hash", sha(raw))
        kw["headers"] = {**kw.get("headers", {}), **h}
        r = client.request(method, url, **kw)
        expected.append((r.status_code, action, want))
        return r

    with TestClient(create_app(container=secured)) as client:
        call(
            "POST",
            "/v1/collections",
            Action.CREATE_COLLECTION,
            body={"name": "hr"},
            collection="hr",
        )
        up = call(
            "POST",
            "/v1/documents",
            Action.UPLOAD,
            files={"file": ("leave.md", LEAVE)},
            data={"collection": "hr"},
            collection="hr",
            summary="leave.md",
            hash=sha(LEAVE),
        )
        doc = up.json()["id"]
        expected[-1][2]["object_id"] = str(doc)
        Worker(secured).run_until_idle()
        q = "How long is paid leave?"
        call(
            "POST",
            "/v1/search",
            Action.SEARCH,
            body={"query": q, "collections": ["hr"]},
            collection="hr",
            summary=q,
        )
        call(
            "POST",
            "/v1/chat",
            Action.CHAT,
            body={"message": q, "collections": ["hr"]},
            collection="hr",
            summary=q,
        )
        call(
            "POST",
            "/v1/chat/completions",
            Action.CHAT_COMPLETIONS,
            body={"model": "hr", "messages": [{"role": "user", "content": q}]},
            collection="hr",
            summary=q,
        )
        call(
            "POST",
            "/v1/embeddings",
            Action.EMBEDDINGS,
            body={"input": ["a", "b"]},
            summary="2 input(s)",
        )
        call(
            "GET",
            f"/v1/documents/{doc}/file",
            Action.DOCUMENT_READ,
            collection="hr",
            object_id=str(doc),
            summary="leave.md",
            hash=sha(LEAVE),
        )
        new = LEAVE + b"\nAnd five days of sick leave.\n"
        call(
            "PUT",
            f"/v1/documents/{doc}",
            Action.REPLACE,
            files={"file": ("x.md", new)},
            collection="hr",
            object_id=str(doc),
            summary="leave.md",
            hash=sha(new),
        )
        src = call(
            "POST",
            "/v1/collections/hr/sources",
            Action.SOURCE_CREATE,
            body={"path": str(sources)},
            collection="hr",
            summary=str(sources),
        )
        sid = src.json()["source"]["id"]
        expected[-1][2]["object_id"] = str(sid)
        call(
            "PATCH",
            f"/v1/sources/{sid}",
            Action.SOURCE_UPDATE,
            body={"paused": True},
            collection="hr",
            object_id=str(sid),
            summary="paused",
        )
        call(
            "POST",
            "/v1/jobs",
            Action.SOURCE_RUN,
            body={"type": "reindex", "collection": "hr", "source_id": sid},
            collection="hr",
            object_id=str(sid),
        )
        call(
            "DELETE",
            f"/v1/sources/{sid}",
            Action.SOURCE_DELETE,
            collection="hr",
            object_id=str(sid),
            summary=str(sources),
        )
        call(
            "DELETE",
            f"/v1/documents/{doc}",
            Action.DELETE_DOCUMENT,
            collection="hr",
            object_id=str(doc),
        )
        # Outside the model roots: refused, and recorded as refused.
        call(
            "POST",
            "/v1/collections/hr/rebuild",
            Action.REBUILD,
            body={"embedding_model": "/nowhere/model"},
            collection="hr",
            summary="/nowhere/model",
        )
        made = call(
            "POST",
            "/v1/keys",
            Action.KEY_CREATE,
            body={"name": "carol", "role": "reader", "collections": ["hr"]},
            summary="carol: reader on hr",
        )
        kid = made.json()["id"]
        expected[-1][2]["object_id"] = str(kid)
        call("DELETE", f"/v1/keys/{kid}", Action.KEY_REVOKE, object_id=str(kid))
        call("DELETE", "/v1/collections/hr", Action.DELETE_COLLECTION, collection="hr")
        # Reads that are not audited leave nothing.
        assert client.get("/v1/documents", headers=h).status_code == 200
        assert client.get("/v1/collections", headers=h).status_code == 200

    rows = events(secured)
    assert [(r.action, r.status) for r in rows] == [(a.value, s) for s, a, _ in expected]
    statuses = {a: s for s, a, _ in expected}
    assert statuses[Action.REBUILD] == 403 and all(
        s < 300 for a, s in statuses.items() if a != Action.REBUILD
    ), statuses
    alice = rows[0].key_id
    for row, (status, action, want) in zip(rows, expected, strict=True):
        assert row.actor == "alice" and row.key_id == alice and row.key_prefix, action
        assert row.client_ip == "testclient" and row.at is not None
        assert row.outcome == Outcome.of(status).value
        for field, column in (
            ("collection", row.collection),
            ("object_id", row.object_id),
            ("summary", row.summary),
            ("hash", row.payload_hash),
        ):
            if field in want:
                assert column == want[field], (action, field, column)
    search = next(r for r in rows if r.action == Action.SEARCH.value)
    assert search.payload_hash and len(search.payload_hash) == 64


def test_failed_authentication_and_role_denials_are_recorded(secured: Container) -> None:
    reader = new_key(secured, "bob", Role.READER, ["default"])
    admin = new_key(secured, "alice", Role.ADMIN)
    prefix, secret = reader[3:].split("_", 1)
    forged = f"gk_{prefix}_{'x' * 43}"  # a real prefix with a wrong secret
    with TestClient(create_app(container=secured)) as client:
        assert client.post("/v1/search", json={"query": "q"}).status_code == 401
        assert client.get("/v1/collections", headers=bearer(forged)).status_code == 401
        assert client.get("/v1/collections", headers=bearer("junk")).status_code == 401
        r = client.post("/v1/collections", json={"name": "x"}, headers=bearer(reader))
        assert r.status_code == 403
        assert client.get("/v1/keys", headers=bearer(reader)).status_code == 403
        assert client.get("/v1/audit", headers=bearer(reader)).status_code == 403
        page = client.get("/v1/audit", headers=bearer(admin))
        assert page.status_code == 200
    got = [
        (r.action, r.outcome, r.status, r.key_id, r.key_prefix, r.summary) for r in events(secured)
    ]
    bob = events(secured)[3].key_id
    assert bob is not None
    assert got == [
        ("auth.failed", "denied", 401, None, None, "POST /v1/search"),
        ("auth.failed", "denied", 401, None, prefix, "GET /v1/collections"),
        ("auth.failed", "denied", 401, None, None, "GET /v1/collections"),
        ("create.collection", "denied", 403, bob, prefix, None),
        ("access.denied", "denied", 403, bob, prefix, "GET /v1/keys"),
        ("access.denied", "denied", 403, bob, prefix, "GET /v1/audit"),
    ]
    # The secret tried is stored nowhere.
    for row in events(secured):
        assert secret not in repr(row.__dict__) and "x" * 43 not in repr(row.__dict__)
    assert [e["action"] for e in page.json()["items"]][:2] == ["access.denied", "access.denied"]


def test_questions_are_not_kept_when_turned_off(
    tmp_path: Path, db_url: str, embedder: Embedder
) -> None:
    c = _container(tmp_path, db_url, embedder, keep_questions=False)
    try:
        admin = new_key(c, "alice", Role.ADMIN)
        with TestClient(create_app(container=c)) as client:
            r = client.post(
                "/v1/search", json={"query": "salary of the CEO"}, headers=bearer(admin)
            )
            assert r.status_code == 200, r.text
            r = client.post("/v1/collections", json={"name": "ceo"}, headers=bearer(admin))
            assert r.status_code == 201
        search, create = events(c)
        assert search.action == "search" and search.summary is None
        assert search.payload_hash and search.collection == "default"
        assert create.collection == "ceo"  # other actions keep their details
    finally:
        c.close()


def test_nothing_is_recorded_with_the_audit_log_off(
    tmp_path: Path, db_url: str, embedder: Embedder
) -> None:
    c = _container(tmp_path, db_url, embedder, enabled=False)
    try:
        admin = new_key(c, "alice", Role.ADMIN)
        with TestClient(create_app(container=c)) as client:
            assert (
                client.post("/v1/search", json={"query": "q"}, headers=bearer(admin)).status_code
                == 200
            )
            assert client.post("/v1/search", json={"query": "q"}).status_code == 401
        assert events(c) == []
    finally:
        c.close()


def test_get_audit_filters_and_pages(secured: Container) -> None:
    admin = new_key(secured, "alice", Role.ADMIN)
    limited = new_key(secured, "eve", Role.ADMIN, ["default"])
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    with secured.sessions() as s:
        for i in range(5):
            audit.record(
                s,
                Event(
                    Action.SEARCH,
                    Outcome.OK,
                    200,
                    key_id=7,
                    collection="hr",
                    at=t0 + timedelta(hours=i),
                ),
            )
        audit.record(
            s,
            Event(
                Action.UPLOAD,
                Outcome.REJECTED,
                415,
                key_id=8,
                collection="fin",
                at=t0 + timedelta(hours=5),
            ),
        )
    with TestClient(create_app(container=secured)) as client:

        def ids(**params: Any) -> list[int]:
            r = client.get("/v1/audit", params=params, headers=bearer(admin))
            assert r.status_code == 200, r.text
            return [e["id"] for e in r.json()["items"]]

        assert ids(until="2026-11-02") == [6, 5, 4, 3, 2, 1]
        assert ids(action="upload") == [6]
        assert ids(key_id=7, since="2026-11-01T03:00:00Z") == [5, 4]
        assert ids(since="2026-11-01T04:00:00+01:00", until="2026-11-01T04:00:00Z") == [4]
        assert ids(collection="fin") == [6] and ids(outcome="rejected") == [6]
        seen, cursor = [], None
        while True:
            params: dict[str, Any] = {"limit": 2, "key_id": 7}
            if cursor:
                params["cursor"] = cursor
            body = client.get("/v1/audit", params=params, headers=bearer(admin)).json()
            seen += [e["id"] for e in body["items"]]
            if not (cursor := body["next_cursor"]):
                break
        assert seen == [5, 4, 3, 2, 1]
        first = client.get("/v1/audit", params={"limit": 1}, headers=bearer(admin)).json()
        assert first["items"][0]["at"].endswith("Z") or "+00:00" in first["items"][0]["at"]
        for bad in (
            {"action": "dance"},
            {"outcome": "meh"},
            {"limit": 0},
            {"cursor": "%%"},
            {"since": "yesterday"},
        ):
            r = client.get("/v1/audit", params=bad, headers=bearer(admin))
            assert r.status_code == 422 and r.json()["error"] == "invalid", bad
        # An admin of only some collections may not read everyone's questions.
        assert client.get("/v1/audit", headers=bearer(limited)).status_code == 403


def test_worker_prunes_by_retention_with_its_clock(secured: Container) -> None:
    now = datetime(2027, 6, 1, tzinfo=UTC)
    with secured.sessions() as s:
        for days in (400, 181, 179, 1):
            audit.record(s, Event(Action.SEARCH, Outcome.OK, at=now - timedelta(days=days)))
    worker = Worker(secured, holder="prune-test", clock=lambda: now)
    assert worker.prune_audit() == 0  # only the writer prunes
    assert worker.acquire()
    try:
        assert worker.prune_audit() == 2
        assert worker.prune_audit() == 0
    finally:
        worker.release()
    ages = sorted(
        round((now - audit.as_utc(r.at)).total_seconds() / 86400) for r in events(secured)
    )
    assert ages == [1, 179]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cli_changes_are_recorded_and_exported_as_json_lines(tmp_path: Path, db_url: str) -> None:
    home = tmp_path / "cli-home"
    made = grounded(home, "keys", "create", "--name", "ops", "--role", "admin")
    assert made.returncode == 0, made.stderr
    prefix = made.stdout.strip().splitlines()[-1][3:].split("_", 1)[0]
    assert grounded(home, "keys", "revoke", prefix).returncode == 0
    out = grounded(home, "audit", "export", "--since", "2000-01-01")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(e["action"], e["actor"], e["object_id"], e["outcome"]) for e in lines] == [
        ("key.create", "cli", "1", "ok"),
        ("key.revoke", "cli", "1", "ok"),
    ]
    assert lines[0]["summary"] == "ops: admin on all collections"
    assert datetime.fromisoformat(lines[0]["at"]).tzinfo is not None
    only = grounded(home, "audit", "export", "--action", "key.revoke")
    assert [json.loads(x)["action"] for x in only.stdout.splitlines()] == ["key.revoke"]
    future = grounded(home, "audit", "export", "--since", "2999-01-01")
    assert future.returncode == 0 and future.stdout == ""
    bad = grounded(home, "audit", "export", "--since", "soon")
    assert bad.returncode == 1 and "--since" in bad.stderr


def test_get_audit_is_documented_with_its_errors(tmp_path: Path) -> None:
    schema = create_app(make_settings(tmp_path, "sqlite://")).openapi()
    op = schema["paths"]["/v1/audit"]["get"]
    assert {"401", "403", "422", "429"} <= set(op["responses"])
    params = {p["name"] for p in op["parameters"]}
    assert params == {
        "since",
        "until",
        "action",
        "key_id",
        "collection",
        "outcome",
        "limit",
        "cursor",
    }
