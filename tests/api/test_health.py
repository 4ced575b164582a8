"""/healthz stays liveness; /readyz follows the worker's heartbeat (its writer lease)."""

from __future__ import annotations

import time
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from api.container import Container
from api.worker import Worker
from data.jobs import JobStatus
from data.leases import WRITER
from data.models import Job, Lease


def backdate_lease(container: Container, seconds: float) -> None:
    """Make the writer's last renewal `seconds` older than it is."""
    with container.sessions() as s:
        lease = s.get(Lease, WRITER)
        assert lease is not None
        s.execute(
            update(Lease).where(Lease.name == WRITER).values(expires_at=lease.expires_at - seconds)
        )
        s.commit()


def test_readyz_is_503_worker_down_while_no_worker_runs(
    client: TestClient, container: Container
) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}  # the API itself is fine
    r = client.post("/v1/documents", files={"file": ("a.txt", b"Apples are red.\n")})
    assert r.status_code == 202

    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["error"] == "worker_down" and "nobody holds the writer lease" in body["message"]
    assert body["worker"] == {
        "alive": False,
        "holder": None,
        "heartbeat_age_s": None,
        "max_age_s": container.settings.worker.lease_ttl_s,
    }
    assert body["queue"]["queued"] == 1 and body["queue"]["running"] == 0
    assert 0 <= body["queue"]["oldest_queued_age_s"] < 60


def test_readyz_follows_the_writer_heartbeat(client: TestClient, container: Container) -> None:
    worker = Worker(container, holder="w1")
    assert worker.acquire()
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["worker"]["holder"] == "w1"
    assert body["worker"]["alive"] and 0 <= body["worker"]["heartbeat_age_s"] < 2
    assert body["queue"] == {"queued": 0, "running": 0, "oldest_queued_age_s": None}

    # A worker killed with -9 keeps its lease row but stops renewing it.
    backdate_lease(container, container.settings.worker.lease_ttl_s + 1)
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["error"] == "worker_down" and "w1 last renewed" in body["message"]
    assert body["worker"]["holder"] == "w1" and not body["worker"]["alive"]
    assert body["worker"]["heartbeat_age_s"] > container.settings.worker.lease_ttl_s

    assert worker.acquire()  # it renews: ready again
    assert client.get("/readyz").status_code == 200
    worker.release()  # a clean stop gives the lease back
    assert client.get("/readyz").json()["error"] == "worker_down"


def test_readyz_threshold_is_a_setting(client: TestClient, container: Container) -> None:
    container.settings.worker.heartbeat_max_age_s = 100.0
    assert Worker(container, holder="w1").acquire()
    backdate_lease(container, 50)  # older than the lease TTL (5 s), younger than 100 s
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["worker"]["max_age_s"] == 100.0


def test_readyz_reports_the_oldest_queued_job(client: TestClient, container: Container) -> None:
    assert Worker(container, holder="w1").acquire()  # (taking the lease requeues `running`)
    for name in ("a.txt", "b.txt"):
        client.post("/v1/documents", files={"file": (name, name.encode() + b" is here.\n")})
    with container.sessions() as s:
        first = s.query(Job).order_by(Job.id).first()
        assert first is not None
        first.created_at = first.created_at - timedelta(days=365)
        s.execute(update(Job).where(Job.id != first.id).values(status=JobStatus.RUNNING.value))
        s.commit()
    queue = client.get("/readyz").json()["queue"]
    assert queue["queued"] == 1 and queue["running"] == 1
    assert queue["oldest_queued_age_s"] > 364 * 86400


def test_readyz_is_503_when_the_database_is_gone(client: TestClient, container: Container) -> None:
    from data.db import make_engine, make_sessionmaker

    broken = make_engine("sqlite:////nonexistent-dir/grounded.db")
    container.sessions = make_sessionmaker(broken)
    start = time.monotonic()
    r = client.get("/readyz")
    assert r.status_code == 503 and time.monotonic() - start < 10
    assert r.json()["error"] == "database_unavailable" and r.json()["message"]
    broken.dispose()
