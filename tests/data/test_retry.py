"""Which errors the worker waits out, and the backoff between its tries."""

from __future__ import annotations

import errno
import sqlite3

import psycopg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from data.retry import Backoff, is_transient


def wrapped(cls: type[DBAPIError], orig: Exception, invalidated: bool = False) -> DBAPIError:
    return cls("UPDATE leases SET ...", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(OperationalError, sqlite3.OperationalError("database or disk is full")),
        wrapped(OperationalError, sqlite3.OperationalError("database is locked")),
        wrapped(OperationalError, sqlite3.OperationalError("disk I/O error")),
        wrapped(OperationalError, psycopg.OperationalError("connection refused")),
        # A dropped connection surfaces as whatever the driver raised, flagged invalidated.
        wrapped(DBAPIError, psycopg.Error("server closed the connection"), invalidated=True),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
    ids=["disk-full", "locked", "io", "refused", "invalidated", "enospc"],
)
def test_blips_and_full_disks_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(IntegrityError, sqlite3.IntegrityError("UNIQUE constraint failed")),
        # sqlite3 files a missing table under OperationalError too; retrying cannot help.
        wrapped(OperationalError, sqlite3.OperationalError("no such table: leases")),
        wrapped(ProgrammingError, psycopg.ProgrammingError("syntax error")),
        OSError(errno.EACCES, "Permission denied"),
        ValueError("a bug"),
    ],
    ids=["integrity", "no-table", "programming", "eacces", "bug"],
)
def test_bugs_and_bad_statements_are_not(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    b = Backoff(1.0, 30.0)
    assert [b.next_delay() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    b.reset()
    assert b.next_delay() == 1.0
    for _ in range(5000):  # no overflow however long the outage
        assert b.next_delay() <= 30.0


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)
