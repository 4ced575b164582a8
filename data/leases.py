"""Named leases in SQL (one writer at a time), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from data.errors import LeaseLostError
from data.models import Lease

WRITER = "writer"


def try_acquire(session: Session, name: str, holder: str, ttl_s: float) -> bool:
    """Take or renew the lease if it is free, expired or already ours; commits."""
    now = time.time()
    res: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Lease)
        .where(
            Lease.name == name,
            or_(Lease.holder == holder, Lease.expires_at < now, Lease.holder.is_(None)),
        )
        .values(holder=holder, expires_at=now + ttl_s)
    )
    session.commit()
    return bool(res.rowcount)


def fence(session: Session, name: str, holder: str, ttl_s: float) -> None:
    """Renew inside the caller's transaction, or raise: a deposed writer must not commit."""
    now = time.time()
    res: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder, Lease.expires_at >= now)
        .values(expires_at=now + ttl_s)
    )
    if not res.rowcount:
        raise LeaseLostError(f"lease {name!r} is no longer held by {holder}")


def release(session: Session, name: str, holder: str) -> None:
    """Give the lease up so another worker can take over at once."""
    session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(holder=None, expires_at=0.0)
    )
    session.commit()


def last_renewal(session: Session, name: str, ttl_s: float) -> tuple[str, float] | None:
    """(holder, epoch seconds of its last take or renewal), or None when nobody holds it.

    Every take and renewal sets `expires_at = now + ttl_s`, so the lease doubles as the
    holder's heartbeat without a column of its own."""
    row = session.execute(select(Lease.holder, Lease.expires_at).where(Lease.name == name)).first()
    if row is None or row.holder is None:
        return None
    return row.holder, row.expires_at - ttl_s
