"""/healthz: the API and SQL answer (liveness). /readyz: a worker is processing the queue."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ContainerDep, SessionDep
from api.errors import error_response
from data.readiness import readiness

router = APIRouter(tags=["health"])


class WorkerOut(BaseModel):
    """The writer's heartbeat: its last lease renewal."""

    alive: bool
    holder: str | None
    heartbeat_age_s: float | None
    max_age_s: float


class QueueOut(BaseModel):
    """Jobs waiting and running."""

    queued: int
    running: int
    oldest_queued_age_s: float | None


class ReadyOut(BaseModel):
    """200 from /readyz."""

    status: str
    worker: WorkerOut
    queue: QueueOut


class NotReadyOut(BaseModel):
    """503 from /readyz: `worker_down` (with the details) or `database_unavailable`."""

    error: str
    message: str
    worker: WorkerOut | None = None
    queue: QueueOut | None = None


@router.get("/healthz")
def healthz(session: SessionDep) -> dict[str, str]:
    """Liveness: the app started and SQL answers (the worker is /readyz's business)."""
    session.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyOut, responses={503: {"model": NotReadyOut}})
def readyz(container: ContainerDep) -> Any:
    """Readiness: a worker renewed the writer lease recently, so uploads will be processed."""
    cfg = container.settings.worker
    try:
        with container.sessions() as s:
            state = readiness(s, lease_ttl_s=cfg.lease_ttl_s, max_age_s=cfg.heartbeat_max_age_s)
    except SQLAlchemyError:
        return error_response(503, "database_unavailable", "the database does not answer")
    details = {"worker": asdict(state.worker), "queue": asdict(state.queue)}
    if state.ready:
        return {"status": "ok", **details}
    w = state.worker
    if w.holder is None:
        message = "no worker is processing jobs: nobody holds the writer lease"
    else:
        message = (
            f"no worker is processing jobs: {w.holder} last renewed the writer lease "
            f"{w.heartbeat_age_s:.0f} s ago (limit {w.max_age_s:g} s)"
        )
    return error_response(503, "worker_down", message, details)
