"""Rate limits per key: a chat budget and a default budget, in memory and shared in Redis."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from api.app import create_app
from api.container import Container, build_container
from api.settings import RateLimitSettings
from data.scope import Role
from retrieval.embedder import Embedder
from tests.api.test_keys import bearer, new_key
from tests.conftest import make_settings

REDIS_URL = "redis://127.0.0.1:6379/0"


def limited(tmp_path: Path, db_url: str, embedder: Embedder, **rate: object) -> Container:
    settings = make_settings(
        tmp_path / "home", db_url, auth={"enabled": True}, rate_limit={"enabled": True, **rate}
    )
    return build_container(settings, embedder=embedder)


@pytest.fixture
def memory(tmp_path: Path, db_url: str, embedder: Embedder) -> Iterator[Container]:
    c = limited(tmp_path, db_url, embedder, chat="3/minute", default="5/minute")
    yield c
    c.close()


@pytest.fixture
def shared_redis(tmp_path: Path, db_url: str, embedder: Embedder) -> Iterator[Container]:
    """Limits in the local Redis under a prefix of this test's own, deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    prefix = f"grounded-test-{uuid.uuid4().hex}"
    c = limited(
        tmp_path, db_url, embedder, default="6/minute", storage=REDIS_URL, key_prefix=prefix
    )
    yield c
    c.close()
    for name in client.scan_iter(f"{prefix}:*"):
        client.delete(name)
    client.close()


def chat(client: TestClient, key: str) -> int:
    # The limit is spent before the body is read: an empty body (422) counts as well.
    return client.post("/v1/chat", json={}, headers=bearer(key)).status_code


def test_over_the_chat_budget_is_429_while_the_default_budget_and_other_keys_go_on(
    memory: Container,
) -> None:
    alice, bob = new_key(memory, Role.ADMIN), new_key(memory, Role.ADMIN)
    with TestClient(create_app(container=memory)) as client:
        assert [chat(client, alice) for _ in range(3)] == [422, 422, 422]
        refused = client.post("/v1/chat", json={}, headers=bearer(alice))
        assert refused.status_code == 429
        body = refused.json()
        assert body["error"] == "rate_limited" and "3 per 1 minute" in body["message"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # /v1/chat/completions is in the same chat budget.
        openai = client.post("/v1/chat/completions", json={}, headers=bearer(alice))
        assert openai.status_code == 429
        # The default budget is untouched; bob's budgets are his own.
        assert client.get("/v1/collections", headers=bearer(alice)).status_code == 200
        assert chat(client, bob) == 422
        # 5 default requests, then 429; health and docs are never limited.
        statuses = [
            client.get("/v1/collections", headers=bearer(alice)).status_code for _ in range(5)
        ]
        assert statuses == [200, 200, 200, 200, 429]
        assert all(client.get("/healthz").status_code == 200 for _ in range(8))
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/v1/collections", headers=bearer(bob)).status_code == 200


def test_in_memory_budgets_are_per_process(memory: Container) -> None:
    key = new_key(memory, Role.ADMIN)
    with (
        TestClient(create_app(container=memory)) as one,
        TestClient(create_app(container=memory)) as two,
    ):
        assert [chat(one, key) for _ in range(4)] == [422, 422, 422, 429]
        assert chat(two, key) == 422  # a second process counts alone: why Redis exists


def test_two_apps_on_one_redis_share_one_budget(shared_redis: Container) -> None:
    key, other = new_key(shared_redis, Role.ADMIN), new_key(shared_redis, Role.ADMIN)
    with (
        TestClient(create_app(container=shared_redis)) as one,
        TestClient(create_app(container=shared_redis)) as two,
    ):
        statuses = [
            (one if i % 2 else two).get("/v1/collections", headers=bearer(key)).status_code
            for i in range(8)
        ]
        assert statuses == [200] * 6 + [429, 429]
        refused = one.get("/v1/collections", headers=bearer(key))
        assert refused.json()["error"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert two.get("/v1/collections", headers=bearer(other)).status_code == 200


def test_without_auth_the_client_address_is_limited(
    tmp_path: Path, db_url: str, embedder: Embedder
) -> None:
    settings = make_settings(
        tmp_path / "home", db_url, rate_limit={"enabled": True, "default": "2/minute"}
    )
    c = build_container(settings, embedder=embedder)
    try:
        with TestClient(create_app(container=c)) as client:
            statuses = [client.get("/v1/collections").status_code for _ in range(3)]
            assert statuses == [200, 200, 429]
    finally:
        c.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [("chat", "30 a minute"), ("default", "many/minute"), ("storage", "memcached://x:1")],
)
def test_bad_values_fail_at_startup(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        RateLimitSettings(**{field: value})  # type: ignore[arg-type]


def test_on_by_default_in_memory() -> None:
    defaults = RateLimitSettings()
    assert defaults.enabled and defaults.storage == "memory://"


def rate_limited_counts(client: TestClient) -> dict[str, float]:
    """grounded_rate_limited_requests_total by budget, read from /metrics."""
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    return {
        s.labels["budget"]: s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
        if s.name == "grounded_rate_limited_requests_total"
    }


def test_429s_are_counted_in_metrics_by_budget(memory: Container) -> None:
    key = new_key(memory, Role.ADMIN)
    # /metrics is served to loopback clients (no metrics token in these settings).
    with TestClient(create_app(container=memory), client=("127.0.0.1", 50000)) as client:
        assert rate_limited_counts(client) == {"chat": 0.0, "default": 0.0}
        assert [chat(client, key) for _ in range(5)] == [422, 422, 422, 429, 429]
        statuses = [
            client.get("/v1/collections", headers=bearer(key)).status_code for _ in range(6)
        ]
        assert statuses == [200] * 5 + [429]
        assert rate_limited_counts(client) == {"chat": 2.0, "default": 1.0}
