"""Keyset pagination shared by every list endpoint: items + opaque next_cursor."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from data.errors import InvalidInputError

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Ids are INTEGER columns: PostgreSQL (int4) holds none larger, so the API refuses them.
MAX_ID = 2**31 - 1


def encode_cursor(last_id: int) -> str:
    """An opaque cursor for 'after this id'."""
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, max_id: int = MAX_ID) -> int:
    """The id a cursor points after (0 for none); a malformed cursor is a 422."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        after = int(value)
        if kind != "id" or not 0 <= after <= max_id:
            raise ValueError(raw)
        return after
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError("invalid cursor") from exc


def paginate(
    session: Session, stmt: Select[Any], id_column: Any, *, limit: int, cursor: str | None
) -> tuple[Sequence[Any], str | None]:
    """Rows of `stmt` after `cursor` in id order, and the cursor for the next page."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}")
    after = decode_cursor(cursor)
    rows = session.scalars(stmt.where(id_column > after).order_by(id_column).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].id) if more and rows else None)
