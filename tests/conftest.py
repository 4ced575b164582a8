"""Shared fixtures: real SQLite and PostgreSQL, the real bundled embedder built once."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container, build_container
from api.settings import Settings
from api.worker import Worker
from data.migrate import upgrade
from retrieval.embedder import Embedder, SentenceTransformerEmbedder

PG_ADMIN = os.environ.get("GROUNDED_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
FIXTURES = Path(__file__).parent / "fixtures"


def _pg_url(dbname: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{dbname}"


def _pg_admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database to clone per test (dropped at the end of the run)."""
    try:
        _pg_admin("SELECT 1")
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN}: {exc}")
    name = f"grounded_tpl_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    upgrade(_pg_url(name))
    yield name
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file to copy per test."""
    path = tmp_path_factory.mktemp("tpl") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database of each kind for one test."""
    if request.param == "sqlite":
        dest = tmp_path / "grounded.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), dest)
        yield f"sqlite:///{dest}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"grounded_t_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield _pg_url(name)
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real bundled all-MiniLM-L6-v2, loaded once per test session."""
    return SentenceTransformerEmbedder(device="cpu")


def make_settings(home: Path, db_url: str, **overrides: object) -> Settings:
    """Settings for a test: state under `home`, short leases and timeouts."""
    base: dict[str, object] = {
        "home": home,
        "database_url": db_url,
        "worker": {"lease_ttl_s": 5.0, "poll_interval_s": 0.05, "checkpoint_interval_s": 0.0},
        "ingest": {"parse_timeout_s": 60.0},
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Test settings on the parametrized database."""
    return make_settings(tmp_path / "home", db_url)


@pytest.fixture
def container(settings: Settings, embedder: Embedder) -> Iterator[Container]:
    """A container sharing the session's embedder."""
    c = build_container(settings, embedder=embedder)
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    """An HTTP client on create_app with the test container."""
    with TestClient(create_app(container=container)) as c:
        yield c


@pytest.fixture
def run_jobs(container: Container) -> Worker:
    """A worker to drain the queue deterministically: `run_jobs.run_until_idle()`."""
    return Worker(container, holder="test-worker")
