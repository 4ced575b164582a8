"""API keys: the CLI and /v1/keys, hash-only storage, 401/403 shapes, revocation, and
refusing to serve unauthenticated off loopback."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import UnsafeBindError, create_app
from api.container import Container, build_container
from api.settings import Settings
from data.keys import create_key
from data.scope import Role
from retrieval.embedder import Embedder
from tests.api.test_cli import grounded
from tests.conftest import make_settings


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def secured(tmp_path: Path, db_url: str, embedder: Embedder) -> Iterator[Container]:
    """A container with authentication on (the product default)."""
    c = build_container(
        make_settings(tmp_path / "home", db_url, auth={"enabled": True}), embedder=embedder
    )
    yield c
    c.close()


def new_key(container: Container, role: Role, collections: list[str] | None = None) -> str:
    with container.sessions() as s:
        return create_key(s, name=f"t-{role.value}", role=role, collections=collections).key


def test_auth_is_on_by_default() -> None:
    assert Settings().auth.enabled is True


def test_cli_create_list_revoke_stores_only_a_hash(tmp_path: Path) -> None:
    home = tmp_path / "home"
    made = grounded(
        home, "keys", "create", "--name", "alice", "--role", "editor", "--collections", "default,hr"
    )
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("gk_") and len(key) > 40 and " " not in key
    prefix, secret = key[3:].split("_", 1)
    listed = grounded(home, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert "alice" in listed.stdout and "editor" in listed.stdout and "default,hr" in listed.stdout
    assert prefix in listed.stdout and secret not in listed.stdout + listed.stderr
    db = home / "grounded.db"
    # Only the hash is stored: the secret is in no row and nowhere in the file's bytes.
    assert secret.encode() not in db.read_bytes()
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            assert secret not in repr(conn.execute(f'SELECT * FROM "{t}"').fetchall()), t
    revoked = grounded(home, "keys", "revoke", prefix)
    assert revoked.returncode == 0 and "revoked key 1" in revoked.stdout, revoked.stderr
    assert "revoked" in grounded(home, "keys", "list").stdout
    bad = grounded(home, "keys", "create", "--name", "bob", "--role", "reader")
    assert bad.returncode == 1 and "needs --collections" in bad.stderr


def test_missing_invalid_and_revoked_keys_are_401(secured: Container) -> None:
    key = new_key(secured, Role.READER, ["default"])
    with TestClient(create_app(container=secured)) as client:
        for headers in (
            {},
            bearer("gk_nothing_here"),
            bearer("nonsense"),
            {"Authorization": "Basic eDp5"},
        ):
            r = client.get("/v1/documents", headers=headers)
            assert r.status_code == 401, headers
            assert r.json()["error"] == "unauthorized" and r.json()["message"]
            assert r.headers["WWW-Authenticate"] == "Bearer"
        assert client.get("/v1/documents", headers=bearer(key)).status_code == 200
        wrong = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
        assert client.get("/v1/documents", headers=bearer(wrong)).status_code == 401
        for open_path in ("/healthz", "/openapi.json", "/docs", "/redoc"):
            assert client.get(open_path).status_code == 200, open_path
        admin = new_key(secured, Role.ADMIN)
        prefix = key[3:11]
        r = client.delete(f"/v1/keys/{prefix}", headers=bearer(admin))
        assert r.status_code == 200 and r.json()["revoked_at"], r.text
        r = client.get("/v1/documents", headers=bearer(key))
        assert r.status_code == 401 and "revoked" in r.json()["message"]


def test_keys_endpoint_is_admin_only_and_never_shows_a_secret(secured: Container) -> None:
    admin = new_key(secured, Role.ADMIN)
    with TestClient(create_app(container=secured)) as client:
        for role in (Role.READER, Role.EDITOR):
            other = bearer(new_key(secured, role, ["default"]))
            r = client.get("/v1/keys", headers=other)
            assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
            body = {"name": "x", "role": "admin"}
            assert client.post("/v1/keys", json=body, headers=other).status_code == 403
        body = {"name": "carol", "role": "reader", "collections": ["default"]}
        r = client.post("/v1/keys", json=body, headers=bearer(admin))
        assert r.status_code == 201, r.text
        carol = r.json()["key"]
        assert r.json()["role"] == "reader" and r.json()["collections"] == ["default"]
        assert client.get("/v1/collections", headers=bearer(carol)).status_code == 200
        listed = client.get("/v1/keys", headers=bearer(admin)).text
        assert "carol" in listed and carol.split("_")[-1] not in listed
        assert admin.split("_")[-1] not in listed and '"key"' not in listed
        body = {"name": "dave", "role": "editor"}  # an editor needs its collections
        assert client.post("/v1/keys", json=body, headers=bearer(admin)).status_code == 422
        assert client.delete("/v1/keys/999999", headers=bearer(admin)).status_code == 404
        limited = bearer(new_key(secured, Role.ADMIN, ["default"]))  # could mint wider keys
        assert client.get("/v1/keys", headers=limited).status_code == 403


def test_a_role_too_low_for_a_visible_object_is_403(secured: Container) -> None:
    admin, reader = (
        bearer(new_key(secured, Role.ADMIN)),
        bearer(new_key(secured, Role.READER, ["default"])),
    )
    with TestClient(create_app(container=secured)) as client:
        files = {"file": ("a.md", b"# A\n\nApples are red.\n")}
        doc = client.post("/v1/documents", files=files, headers=admin).json()["id"]
        assert client.get(f"/v1/documents/{doc}", headers=reader).status_code == 200
        r = client.delete(f"/v1/documents/{doc}", headers=reader)
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        assert client.post("/v1/documents", files=files, headers=reader).status_code == 403
        r = client.post("/v1/collections", json={"name": "new"}, headers=reader)
        assert r.status_code == 403
        assert client.get("/v1/jobs", headers=reader).status_code == 403
        assert client.get(f"/v1/documents/{doc}", headers=admin).json()["status"] != "deleting"


def test_unauthenticated_is_refused_off_loopback(tmp_path: Path, db_url: str) -> None:
    open_ = make_settings(tmp_path / "h", db_url, host="0.0.0.0", auth={"enabled": False})
    with pytest.raises(
        UnsafeBindError, match="refusing to serve on 0.0.0.0 with authentication off"
    ):
        create_app(open_)
    create_app(make_settings(tmp_path / "h", db_url, host="0.0.0.0", auth={"enabled": True}))
    create_app(make_settings(tmp_path / "h", db_url, host="::1", auth={"enabled": False}))


def test_cli_run_refuses_unauthenticated_on_all_interfaces(tmp_path: Path) -> None:
    r = grounded(tmp_path / "home", "run", "--host", "0.0.0.0", GROUNDED_AUTH__ENABLED="false")
    assert r.returncode == 1
    assert "refusing to serve on 0.0.0.0 with authentication off" in r.stderr


def test_first_start_says_how_to_make_an_admin_key(
    secured: Container, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), TestClient(create_app(container=secured)):
        pass
    assert "grounded keys create --name admin --role admin" in caplog.text
    caplog.clear()
    new_key(secured, Role.ADMIN)
    with caplog.at_level(logging.WARNING), TestClient(create_app(container=secured)):
        pass
    assert "no admin API key" not in caplog.text


def test_me_tells_any_role_its_own_name_role_and_grants(secured: Container) -> None:
    reader = new_key(secured, Role.READER, ["hr", "default"])
    admin = new_key(secured, Role.ADMIN)
    with TestClient(create_app(container=secured)) as client:
        me = client.get("/v1/me", headers=bearer(reader))
        assert me.status_code == 200, me.text
        body = me.json()
        assert body["name"] == "t-reader" and body["role"] == "reader"
        assert body["collections"] == ["default", "hr"] and "key" not in body
        # The reader still may not list keys: only /v1/me is open to every role.
        assert client.get("/v1/keys", headers=bearer(reader)).status_code == 403
        assert client.get("/v1/me", headers=bearer(admin)).json()["collections"] is None
        assert client.get("/v1/me").status_code == 401


def test_me_with_auth_off_is_an_unnamed_admin(client: TestClient) -> None:
    body = client.get("/v1/me").json()
    assert body == {"id": None, "name": None, "role": "admin", "collections": None}
