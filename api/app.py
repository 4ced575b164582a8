"""create_app: the FastAPI application with a lifespan that owns the container."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.container import Container, build_container
from api.routes import (
    chat,
    collections,
    conversations,
    documents,
    health,
    jobs,
    openai_compat,
    search,
    sources,
)
from api.settings import Settings

# Multipart framing around the file; a body beyond limit + this is refused mid-stream.
_MULTIPART_SLACK = 64 * 1024


class BodyLimit:
    """Refuse a request body larger than the upload limit while it streams in (413)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes + _MULTIPART_SLACK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.max_bytes:
                # Answer now and tell the app the client is gone; it stops reading.
                refused = True
                await self._refuse(send)
                return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg: Message) -> None:
            if not refused:  # whatever the app answers after our 413 is dropped
                await send(msg)

        await self.app(scope, counted, guarded_send)

    async def _refuse(self, send: Send) -> None:
        limit_mb = (self.max_bytes - _MULTIPART_SLACK) / 1e6
        body = json.dumps(
            {"error": "too_large", "message": f"request is larger than the {limit_mb:g} MB limit"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """The API app; pass `container` (tests) to reuse components built elsewhere."""
    settings = settings or (container.settings if container else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        # Loading a model blocks: keep it off the event loop.
        app.state.container = container or await anyio.to_thread.run_sync(
            partial(build_container, settings, with_llm=True)
        )
        try:
            yield
        finally:
            if owned:
                app.state.container.close()

    app = FastAPI(title="Grounded", version="0.1.0", lifespan=lifespan)
    errors.install(app)
    routers = (health, collections, sources, jobs, documents, search, chat, conversations)
    for module in (*routers, openai_compat):
        app.include_router(module.router)
    max_bytes = int(settings.ingest.max_upload_mb * 1_000_000)
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
    return app
