"""Schemathesis against /openapi.json: no 5xx, and every answer matches the documented schema.

The app runs on SQLite with a scripted chat model (the words do not matter here) and one
indexed document, so ids 1 and the "default" collection exist. Authentication is on and
every call sends an admin key, so every operation, /v1/keys and /v1/audit included, is
reached.
Generation is derandomized with a bounded number of examples per operation, so a run is
repeatable and takes about a minute on 2 cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from api.app import create_app
from api.container import bounded_chat_model, build_container
from api.worker import Worker
from data.keys import create_key
from data.scope import Role
from retrieval.embedder import Embedder
from tests.conftest import make_settings
from tests.helpers import ScriptedChatModel

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    unsupported_method,
    allow_header_conformance,
]


ADMIN: dict[str, str] = {}


@pytest.fixture
def api_app(tmp_path: Path, db_url: str, embedder: Embedder) -> Iterator[FastAPI]:
    """The app with one indexed document, on the test's database; ADMIN holds the header."""
    (tmp_path / "sources").mkdir()
    settings = make_settings(
        tmp_path / "home", db_url, auth={"enabled": True}, source_roots=str(tmp_path / "sources")
    )
    model = bounded_chat_model(settings, ScriptedChatModel("Every employee gets leave."))
    container = build_container(settings, embedder=embedder, chat_model=model)
    with container.sessions() as s:
        ADMIN["Authorization"] = f"Bearer {create_key(s, name='fuzz', role=Role.ADMIN).key}"
    app = create_app(container=container)
    with TestClient(app) as client:
        files = {"file": ("leave.md", b"# Leave\n\nThirty days.\n")}
        r = client.post("/v1/documents", files=files, headers=ADMIN)
        assert r.status_code == 202, r.text
        Worker(container).run_until_idle()
        yield app
    container.close()


@pytest.fixture
def api_schema(api_app: FastAPI):  # type: ignore[no-untyped-def]
    """The schema the app serves, called in-process."""
    return schemathesis.openapi.from_asgi("/openapi.json", api_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_shim(request: pytest.FixtureRequest) -> None:
    # Schemathesis 4.32 renames the running test through `node._nodeid`, which pytest 9 no
    # longer has; give it one.
    request.node._nodeid = request.node.nodeid


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@schema.parametrize()
@hypothesis.settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_conforms_to_its_schema(case) -> None:  # type: ignore[no-untyped-def]
    # /readyz's documented 503 is its answer while no worker runs, as here.
    skip = [not_a_server_error] if case.path == "/readyz" else []
    case.call_and_validate(headers=ADMIN, checks=[c for c in CHECKS if c not in skip])
