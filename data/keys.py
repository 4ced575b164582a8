"""API keys: create (the secret is shown once, only its hash is kept), list, revoke, check.

A key is `gk_<prefix>_<secret>`: the prefix finds the row, the secret is 32 random bytes.
Such a secret cannot be guessed or brute-forced from its hash, so one SHA-256 is enough
(a slow password hash guards low-entropy human passwords, which these are not), and
checking a key on every request costs microseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from data.errors import InvalidInputError, NotFoundError, UnauthorizedError
from data.models import ApiKey
from data.scope import Role, Scope

KEY_PREFIX = "gk_"
PREFIX_CHARS = 8
# last_used_at is written at most this often per key (not on every request).
_TOUCH_EVERY_S = 60.0


@dataclass(frozen=True)
class NewKey:
    """A key just created: the row and the full key, which is never shown again."""

    row: ApiKey
    key: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session, *, name: str, role: Role, collections: Sequence[str] | None = None
) -> NewKey:
    """A new key; `collections` None or empty grants all of them (admins only)."""
    name = name.strip()
    if not name:
        raise InvalidInputError("a key needs a name")
    grants = sorted({c.strip() for c in collections or [] if c.strip()}) or None
    if grants is None and role != Role.ADMIN:
        raise InvalidInputError(f"a {role.value} key needs --collections (the ones it may use)")
    prefix = secrets.token_hex(PREFIX_CHARS // 2)
    while session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is not None:
        prefix = secrets.token_hex(PREFIX_CHARS // 2)
    secret = secrets.token_urlsafe(32)
    row = ApiKey(
        name=name[:200],
        prefix=prefix,
        secret_hash=_hash(secret),
        role=role.value,
        collections=grants,
    )
    session.add(row)
    session.commit()
    return NewKey(row=row, key=f"{KEY_PREFIX}{prefix}_{secret}")


def describe(name: str, role: Role, collections: Sequence[str] | None) -> str:
    """A key in a few words (for the audit log): whose, which role, which collections."""
    return f"{name}: {role.value} on {','.join(collections or []) or 'all collections'}"


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def find_key(session: Session, ref: str) -> ApiKey:
    """A key by id or prefix (404 if none)."""
    # A hex prefix can be all digits: a digit string is tried as an id, then as a prefix.
    by_id = ref.isdigit() and len(ref) < 10
    row = session.get(ApiKey, int(ref)) if by_id else None
    row = row or session.scalar(select(ApiKey).where(ApiKey.prefix == ref))
    if row is None:
        raise NotFoundError(f"key {ref!r} not found")
    return row


def revoke_key(session: Session, ref: str) -> ApiKey:
    """Revoke a key by id or prefix; it is refused from then on (revoking twice is a no-op)."""
    row = find_key(session, ref)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.commit()
    return row


def has_admin_key(session: Session) -> bool:
    """Whether any unrevoked admin key exists."""
    q = select(ApiKey.id).where(ApiKey.role == Role.ADMIN.value, ApiKey.revoked_at.is_(None))
    return session.scalar(q.limit(1)) is not None


def scope_of(row: ApiKey) -> Scope:
    """What a key may see and do."""
    grants = None if row.collections is None else frozenset(row.collections)
    return Scope(collections=grants, key_id=row.id, role=Role(row.role))


def prefix_of(key: str) -> str | None:
    """The lookup prefix of something shaped like a key (never any of its secret)."""
    prefix, _, secret = key.removeprefix(KEY_PREFIX).partition("_")
    shaped = key.startswith(KEY_PREFIX) and secret and len(prefix) == PREFIX_CHARS
    return prefix if shaped and all(c in "0123456789abcdef" for c in prefix) else None


def authenticate(session: Session, key: str) -> Scope:
    """The scope of a valid key; an unknown, malformed or revoked one is a 401."""
    prefix, _, secret = key.removeprefix(KEY_PREFIX).partition("_")
    if not key.startswith(KEY_PREFIX) or not secret or len(prefix) != PREFIX_CHARS:
        raise UnauthorizedError("invalid API key")
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
        raise UnauthorizedError("invalid API key")
    if row.revoked_at is not None:
        raise UnauthorizedError("this API key was revoked")
    now = datetime.now(UTC)
    last = row.last_used_at
    last = last if last is None or last.tzinfo else last.replace(tzinfo=UTC)  # SQLite: naive
    if last is None or (now - last).total_seconds() > _TOUCH_EVERY_S:
        row.last_used_at = now
        session.commit()
    return scope_of(row)
