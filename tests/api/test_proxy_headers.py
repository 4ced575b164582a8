"""Behind a reverse proxy: X-Forwarded-For/-Proto count only from GROUNDED_FORWARDED_ALLOW_IPS.

Every test serves the app as `grounded serve` does: create_app, wrapped by uvicorn with
server_options (uvicorn.Config.load applies uvicorn's own middleware, as uvicorn.run would).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app, server_options
from api.container import build_container
from api.settings import Settings
from retrieval.embedder import Embedder
from tests.conftest import make_settings

PROXY = "10.0.0.2"
LOOPBACK = "127.0.0.1"


@contextmanager
def served(
    tmp_path: Path, db_url: str, embedder: Embedder, peer: str, **overrides: object
) -> Iterator[TestClient]:
    """A client connecting from `peer` to the app `grounded serve` would run."""
    settings = make_settings(tmp_path / "home", db_url, **overrides)
    container = build_container(settings, embedder=embedder)
    config = uvicorn.Config(create_app(container=container), **server_options(settings))
    config.load()
    try:
        with TestClient(config.loaded_app, client=(peer, 40000)) as client:
            yield client
    finally:
        container.close()


def metrics_status(client: TestClient, forwarded_for: str) -> int:
    """/metrics answers loopback clients only (no token set): 200 or 403 tells who we are."""
    return client.get("/metrics", headers={"X-Forwarded-For": forwarded_for}).status_code


def test_without_the_setting_forwarded_headers_are_ignored(
    tmp_path: Path, db_url: str, embedder: Embedder
) -> None:
    """The default trusts no proxy, not even one on loopback (uvicorn's own default does:
    a local proxy passing a client's X-Forwarded-For through would let it pick its address)."""
    with served(tmp_path, db_url, embedder, LOOPBACK) as client:
        assert metrics_status(client, "203.0.113.9") == 200  # still the loopback peer
        r = client.get(
            "/v1/collections/", headers={"X-Forwarded-Proto": "https"}, follow_redirects=False
        )
        assert r.status_code == 307 and r.headers["location"].startswith("http://")
    with served(tmp_path / "b", db_url, embedder, "198.51.100.4") as client:
        assert metrics_status(client, LOOPBACK) == 403  # a remote peer cannot claim loopback


def test_a_trusted_proxy_passes_the_real_client_and_scheme(
    tmp_path: Path, db_url: str, embedder: Embedder
) -> None:
    with served(tmp_path, db_url, embedder, LOOPBACK, forwarded_allow_ips="127.0.0.1") as client:
        assert metrics_status(client, "203.0.113.9") == 403  # the client is remote
        assert metrics_status(client, "127.0.0.1") == 200
        # Redirects point back at https, the scheme the client used at the proxy.
        r = client.get(
            "/v1/collections/", headers={"X-Forwarded-Proto": "https"}, follow_redirects=False
        )
        assert r.status_code == 307 and r.headers["location"].startswith("https://")


def test_only_listed_peers_are_believed(tmp_path: Path, db_url: str, embedder: Embedder) -> None:
    with served(
        tmp_path, db_url, embedder, "198.51.100.4", forwarded_allow_ips="10.0.0.0/8"
    ) as client:
        assert metrics_status(client, LOOPBACK) == 403  # not a listed proxy: its claim is not
    with served(
        tmp_path / "b", db_url, embedder, PROXY, forwarded_allow_ips="10.0.0.0/8"
    ) as client:
        assert metrics_status(client, LOOPBACK) == 200  # a proxy in the listed network


def test_rate_limits_count_each_client_behind_a_trusted_proxy(
    tmp_path: Path, db_url: str, embedder: Embedder
) -> None:
    """With keys off the client address is the budget's owner: behind a proxy, the client's."""
    limits = {"enabled": True, "default": "2/minute"}

    def statuses(client: TestClient, who: list[str]) -> list[int]:
        return [
            client.get("/v1/collections", headers={"X-Forwarded-For": w}).status_code for w in who
        ]

    alice, bob = "203.0.113.9", "203.0.113.10"
    with served(
        tmp_path, db_url, embedder, PROXY, rate_limit=limits, forwarded_allow_ips=PROXY
    ) as client:
        assert statuses(client, [alice, alice, alice, bob]) == [200, 200, 429, 200]
    with served(tmp_path / "b", db_url, embedder, PROXY, rate_limit=limits) as client:
        # Untrusted, every client is the proxy: bob pays for alice.
        assert statuses(client, [alice, alice, bob]) == [200, 200, 429]


@pytest.mark.parametrize("value", ["proxy.local", "10.0.0.300", "10.0.0.0/8,nginx"])
def test_a_malformed_proxy_list_fails_at_startup(value: str) -> None:
    with pytest.raises(ValidationError, match="forwarded_allow_ips"):
        Settings(forwarded_allow_ips=value)


def test_proxy_list_forms() -> None:
    settings = Settings(forwarded_allow_ips=" 10.0.0.2, 172.16.0.0/12 ,::1,")
    assert settings.forwarded_allow_list == ["10.0.0.2", "172.16.0.0/12", "::1"]
    assert Settings(forwarded_allow_ips="*").forwarded_allow_list == ["*"]
    assert Settings().forwarded_allow_list == []
