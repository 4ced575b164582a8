"""create_app: the FastAPI application with a lifespan that owns the container."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
from fastapi import Depends, FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import errors, offline_docs
from api.audit import AuditTrail
from api.container import Container, build_container
from api.deps import get_scope
from api.metrics import HttpMetrics, app_metrics
from api.origin import HostOriginGuard
from api.ratelimit import RateLimiter, rate_limit
from api.request_log import RequestId
from api.routes import (
    audit,
    chat,
    collections,
    conversations,
    documents,
    health,
    jobs,
    keys,
    metrics,
    openai_compat,
    passages,
    search,
    sources,
)
from api.settings import Settings
from api.web import routes as web
from data.keys import has_admin_key

log = logging.getLogger(__name__)

# Multipart framing around the file; a body beyond limit + this is refused mid-stream.
_MULTIPART_SLACK = 64 * 1024


class BodyLimit:
    """Refuse a request body over its limit while it streams in (413), whatever the method:
    a multipart upload under `upload_prefixes` may reach `max_bytes` (plus the framing),
    any other body `json_bytes` (default: the same)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        json_bytes: int | None = None,
        upload_prefixes: tuple[str, ...] = ("/",),
    ) -> None:
        self.app = app
        # (bytes a request may send, the limit its 413 names)
        self.upload = (max_bytes + _MULTIPART_SLACK, max_bytes)
        self.other = self.upload if json_bytes is None else (json_bytes, json_bytes)
        self.upload_prefixes = upload_prefixes

    def _limit(self, scope: Scope) -> tuple[int, int]:
        kind = dict(scope["headers"]).get(b"content-type", b"")
        is_upload = kind.lower().startswith(b"multipart/form-data") and any(
            scope["path"].startswith(p) for p in self.upload_prefixes
        )
        return self.upload if is_upload else self.other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, named = self._limit(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, named)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > limit:
                # Answer now and tell the app the client is gone; it stops reading.
                refused = True
                await self._refuse(send, named)
                return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg: Message) -> None:
            if not refused:  # whatever the app answers after our 413 is dropped
                await send(msg)

        await self.app(scope, counted, guarded_send)

    async def _refuse(self, send: Send, limit: int) -> None:
        message = f"request is larger than the {limit / 1e6:g} MB limit"
        body = json.dumps({"error": "too_large", "message": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class UnsafeBindError(RuntimeError):
    """Refused: serving without authentication on an address other machines can reach."""


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Authentication may be off only on a loopback address; anything else is refused."""
    if not settings.auth.enabled and not is_loopback(settings.host):
        raise UnsafeBindError(
            f"refusing to serve on {settings.host} with authentication off "
            "(GROUNDED_AUTH__ENABLED=false): anyone who can reach the port could read and "
            "delete every document. Turn authentication on, or bind 127.0.0.1."
        )


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for `grounded serve`. Proxy headers are create_app's to honour
    (GROUNDED_FORWARDED_ALLOW_IPS), not uvicorn's, whose default believes 127.0.0.1."""
    return {
        "host": settings.host,
        "port": settings.port,
        "proxy_headers": False,
        # Uvicorn's own lines go through the root logger (JSON); the app logs each request.
        "log_config": None,
        "access_log": False,
    }


def _hint_first_key(container: Container) -> None:
    """Say how to make the first admin key while none exists (every request needs one)."""
    if not container.settings.auth.enabled:
        log.warning("authentication is off (GROUNDED_AUTH__ENABLED=false): loopback only")
        return
    with container.sessions() as session:
        if not has_admin_key(session):
            log.warning(
                "no admin API key yet; every request needs one. Create the first with: "
                "grounded keys create --name admin --role admin"
            )


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """The API app; pass `container` (tests) to reuse components built elsewhere."""
    settings = settings or (container.settings if container else Settings())
    check_bind(settings)
    if container is not None:
        check_bind(container.settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        # Loading a model blocks: keep it off the event loop.
        app.state.container = container or await anyio.to_thread.run_sync(
            partial(build_container, settings, with_llm=True)
        )
        await anyio.to_thread.run_sync(_hint_first_key, app.state.container)
        try:
            yield
        finally:
            if owned:
                app.state.container.close()

    # The docs pages load their assets from this server (air-gapped), not from a CDN.
    app = FastAPI(
        title="Grounded", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.rate_limiter = (
        RateLimiter(settings.rate_limit) if settings.rate_limit.enabled else None
    )
    offline_docs.install(app)
    errors.install(app)
    app.include_router(health.router)  # open: probes need no key
    app.include_router(metrics.router)  # its own token or loopback (GROUNDED_METRICS__TOKEN)
    routers = (
        collections,
        sources,
        jobs,
        documents,
        passages,
        search,
        chat,
        conversations,
        keys,
        audit,
    )
    for module in (*routers, openai_compat):
        # Every other route needs a valid key (per-route roles add a 403) and is rate-limited.
        app.include_router(
            module.router,
            dependencies=[Depends(get_scope), Depends(rate_limit)],
            responses=errors.responses(401, 403, 429),
        )

    # GET /v1/me: a valid key of any role (/v1/keys is for admins).
    app.include_router(
        keys.me_router,
        dependencies=[Depends(get_scope), Depends(rate_limit)],
        responses=errors.responses(401, 429),
    )
    if settings.web:
        web.install(app)  # open: the shell holds no data; the page calls the keyed API
    app.add_middleware(
        BodyLimit,
        max_bytes=int(settings.ingest.max_upload_mb * 1_000_000),
        json_bytes=int(settings.max_json_mb * 1_000_000),
        upload_prefixes=(documents.router.prefix,),
    )
    # Outside BodyLimit (an upload cut off at the limit is recorded as its 413), inside
    # the Host/Origin guard (a request it refuses reaches no route, so names no action).
    app.add_middleware(AuditTrail, settings=settings.audit)
    hosts, origins = settings.allowed_host_names, settings.allowed_origin_names
    app.add_middleware(HostOriginGuard, hosts=hosts, origins=origins)
    app.add_middleware(HttpMetrics, metrics=app_metrics)
    app.add_middleware(RequestId)  # every log line of the request carries its id
    if settings.forwarded_allow_list:  # outermost: everything after sees the real client
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_list)
    return app
