"""Host and origin checks: a Host header the server is not named by is a 400 (DNS
rebinding), and a state-changing request a browser sent from another site is a 403."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_port(netloc: str, default_port: int | None) -> tuple[str, int | None] | None:
    """(lower-case host, port) of `host[:port]` or `[v6]:port`; None when malformed."""
    try:
        parts = urlsplit(f"//{netloc}")
        return (parts.hostname or "", parts.port or default_port) if parts.hostname else None
    except ValueError:
        return None


def _origin(origin: str) -> tuple[str, tuple[str, int | None] | None]:
    """The normalised origin ("scheme://host:port") and its (host, port)."""
    try:
        parts = urlsplit(origin)
        scheme = parts.scheme.lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return origin, None
    if not parts.hostname or scheme not in _DEFAULT_PORTS:
        return origin, None  # "null" (a sandboxed page, a file) and the like: foreign
    return f"{scheme}://{parts.hostname}:{port}", (parts.hostname, port)


class HostOriginGuard:
    """Refuse a Host not in `hosts` (400 bad_host) and a POST/PUT/PATCH/DELETE whose
    Origin is another than the Host it was sent to and not in `origins`, or that a browser
    marks `Sec-Fetch-Site: cross-site` (403 cross_origin). No Origin (curl, SDKs) passes."""

    def __init__(self, app: ASGIApp, *, hosts: Iterable[str], origins: Iterable[str]) -> None:
        self.app = app
        self.hosts = {h.strip("[]").lower() for h in hosts}
        listed = [o.strip().rstrip("/") for o in origins]
        self.any_origin = "*" in listed
        self.origins = {_origin(o)[0] for o in listed if o != "*"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        named = _host_port(host, None)
        if "*" not in self.hosts and (named is None or named[0] not in self.hosts):
            await _refuse(
                scope,
                receive,
                send,
                400,
                "bad_host",
                "this server is not served under that Host name",
            )
            return
        if scope["method"] in STATE_CHANGING and not self._same_site(headers, host):
            message = "a browser page from another origin may not change this server's state"
            await _refuse(scope, receive, send, 403, "cross_origin", message)
            return
        await self.app(scope, receive, send)

    def _same_site(self, headers: Headers, host: str) -> bool:
        origin = headers.get("origin")
        if origin is None:
            return headers.get("sec-fetch-site", "").lower() != "cross-site"
        if self.any_origin:
            return True
        normal, where = _origin(origin)
        if where is None:
            return False
        if normal in self.origins:
            return True
        # The page's own server: the Origin names the host and port the request went to
        # (a Host without a port means the origin scheme's default, as browsers send it).
        scheme = normal.split("://", 1)[0]
        return _host_port(host, _DEFAULT_PORTS[scheme]) == where


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str
) -> None:
    await error_response(status, code, message)(scope, receive, send)
