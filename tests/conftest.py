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
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.container import Container, build_container
from api.settings import Settings
from api.worker import Worker
from data.db import make_engine, make_sessionmaker
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


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test's fresh database."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions on the test's fresh database."""
    return make_sessionmaker(engine)


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One export cache for the session: the int8 embedding model is exported afresh once
    per run, and every container, worker and server process the tests start (they inherit
    the environment) reuses it instead of exporting into each test's home."""
    cache = tmp_path_factory.mktemp("models")
    before = os.environ.get("GROUNDED_EMBEDDING__CACHE_DIR")
    os.environ["GROUNDED_EMBEDDING__CACHE_DIR"] = str(cache)
    yield cache
    if before is None:
        os.environ.pop("GROUNDED_EMBEDDING__CACHE_DIR", None)
    else:
        os.environ["GROUNDED_EMBEDDING__CACHE_DIR"] = before


@pytest.fixture(scope="session")
def embedder(model_cache: Path) -> Embedder:
    """The real bundled all-MiniLM-L6-v2 on the CPU default backend (int8 ONNX), loaded
    once per test session."""
    return SentenceTransformerEmbedder(device="cpu", cache_dir=model_cache)


def make_settings(home: Path, db_url: str, **overrides: object) -> Settings:
    """Settings for a test: state under `home`, short leases and timeouts."""
    base: dict[str, object] = {
        "home": home,
        "database_url": db_url,
        "worker": {"lease_ttl_s": 5.0, "poll_interval_s": 0.05, "checkpoint_interval_s": 0.0},
        "ingest": {"parse_timeout_s": 60.0},
        # Explicitly off (allowed on loopback, the default host): tests of other features
        # need no key. tests/api/test_keys.py, test_access_fuzz.py and the schemathesis
        # run turn it on.
        "auth": {"enabled": False},
        "allowed_hosts": "testserver",  # TestClient's Host; not a product default
        # Off: a suite of many requests from one key must not meet a 429 by accident.
        # tests/api/test_rate_limit.py turns it on.
        "rate_limit": {"enabled": False},
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """Test settings on the parametrized database; folders under tmp/sources may be watched."""
    (tmp_path / "sources").mkdir()
    return make_settings(tmp_path / "home", db_url, source_roots=str(tmp_path / "sources"))


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


@pytest.fixture(scope="session")
def chat_model():  # type: ignore[no-untyped-def]
    """The real bundled SmolLM2-135M-Instruct behind the bounded queue, loaded once."""
    from llm.queue import BoundedChatModel
    from llm.transformers_backend import TransformersChatModel

    return BoundedChatModel(TransformersChatModel(device="cpu"), max_concurrent=1, max_waiting=8)


@pytest.fixture
def chat_container(settings: Settings, embedder: Embedder, chat_model) -> Iterator[Container]:  # type: ignore[no-untyped-def]
    """A container with the real embedder and the real chat model."""
    c = build_container(settings, embedder=embedder, chat_model=chat_model)
    yield c
    c.close()


@pytest.fixture
def chat_client(chat_container: Container) -> Iterator[TestClient]:
    """An HTTP client on an app that can answer."""
    with TestClient(create_app(container=chat_container)) as c:
        yield c


class LiveServer:
    """create_app served by a real uvicorn on a free loopback port, in a thread."""

    def __init__(self, container: Container) -> None:
        import socket
        import threading

        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(container=container), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        import time

        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Shut down and wait."""
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_server(chat_container: Container) -> Iterator[LiveServer]:
    """A real HTTP server (for clients that need a socket: openai, LangChain, disconnects)."""
    server = LiveServer(chat_container)
    yield server
    server.stop()
