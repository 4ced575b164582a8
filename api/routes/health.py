"""/healthz: 200 once requests can be taken (the database answers)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(session: SessionDep) -> dict[str, str]:
    """Liveness and readiness in one: the app started and SQL answers."""
    session.execute(text("SELECT 1"))
    return {"status": "ok"}
