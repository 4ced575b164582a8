"""Logs as JSON lines carrying the request id; the middleware that assigns that id."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
# An incoming id is kept when it is short and plain (it is echoed and logged); else a new one.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_request_id: ContextVar[str | None] = ContextVar("grounded_request_id", default=None)
# LogRecord's own attributes; anything else on a record came as `extra=` and is written out.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

access = logging.getLogger("grounded.access")


def current_request_id() -> str | None:
    """The id of the request being handled in this context, if any."""
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (`request_id`, None outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def log_handler(stream: TextIO, *, json_lines: bool) -> logging.Handler:
    """A handler writing to `stream` with the request id filter, as JSON or as text."""
    return _dress(logging.StreamHandler(stream), json_lines=json_lines)


def _dress(handler: logging.Handler, *, json_lines: bool) -> logging.Handler:
    handler.addFilter(RequestIdFilter())
    text = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(text))
    return handler


class _Installed(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installed (replaced when it is called again)."""


def configure_logging(*, json_lines: bool, level: int = logging.INFO) -> None:
    """The root logger writes to stderr through `log_handler`. Like `logging.basicConfig`,
    it leaves a root logger that something else configured (a test harness) alone."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Installed)]:
        root.removeHandler(old)
    if root.handlers:
        return
    root.addHandler(_dress(_Installed(sys.stderr), json_lines=json_lines))
    root.setLevel(level)


class RequestId:
    """Assign each HTTP request an id (a sane incoming X-Request-ID is kept), return it in
    the X-Request-ID header, hold it for the log lines of the request, log one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = Headers(scope=scope).get(HEADER)
        rid = sent if sent is not None and _SANE_ID.fullmatch(sent) else uuid.uuid4().hex
        token = _request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def tagged(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
                msg = {**msg, "headers": [*msg.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(msg)

        try:
            await self.app(scope, receive, tagged)
        finally:
            access.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            _request_id.reset(token)
