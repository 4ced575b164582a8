"""Which errors pass by themselves (a database blip, a full disk), and how long to wait."""

from __future__ import annotations

import errno
import sqlite3

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

# A full disk or quota: the writes that failed are retried once space is freed.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# SQLite errors that pass: another writer's lock, a full disk, a file briefly unreachable.
_SQLITE_PASSING = ("locked", "busy", "full", "disk i/o", "unable to open")


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: a lost or refused database connection, a locked or
    full SQLite file, a full disk under the index files."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DisconnectionError):
        return True
    if isinstance(exc, OperationalError):
        # The DB-API's class of "not the statement's fault": refused or dropped connections,
        # a server shutting down. sqlite3 also files `no such table` there: that one stays.
        if isinstance(exc.orig, sqlite3.Error):
            return any(word in str(exc.orig).lower() for word in _SQLITE_PASSING)
        return True
    return isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS


class Backoff:
    """Capped exponential delays: `initial_s`, doubling up to `max_s`; `reset` on success."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError("need 0 < initial_s <= max_s")
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0

    def next_delay(self) -> float:
        """The wait before the next try; each call doubles the following one."""
        delay = min(self.max_s, self.initial_s * 2.0 ** min(self.failures, 62))
        self.failures += 1
        return delay

    def reset(self) -> None:
        """Back to the initial delay (the last try succeeded)."""
        self.failures = 0
