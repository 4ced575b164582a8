"""The audit log's HTTP side: each route declares its action, one middleware records it.

A route says what it does in its decorator, `dependencies=[audited(Action.UPLOAD)]`, and may
add details (object id, collection, summary) through an `AuditDep` parameter. `get_scope`
notes who called (or that authentication failed). `AuditTrail` then writes one row once the
response is over, whatever happened: in a worker thread, in its own short transaction, so a
failed request is recorded too and a rollback of the route's session cannot drop the row.
tests/api/test_audit.py walks the routes and fails on a state-changing one with no action.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.settings import AuditSettings
from data import audit
from data.audit import QUESTION_ACTIONS, Action, Event, Outcome
from data.models import ApiKey

log = logging.getLogger(__name__)

STATE_KEY = "grounded_audit"
# Path parameters that name the object a route acts on, when the route did not say.
_OBJECT_PARAMS = ("document_id", "source_id", "job_id", "ref")


@dataclass
class AuditIntent:
    """What the request's row will say; get_scope and the route fill it in."""

    action: Action | None = None
    authenticated: bool = False
    auth_failed: bool = False
    key_id: int | None = None
    key_prefix: str | None = None
    collection: str | None = None
    object_id: str | None = None
    summary: str | None = None
    payload_hash: str | None = None  # replaces the request body's hash (an upload's file)

    def about(
        self,
        *,
        collection: str | None = None,
        object_id: object = None,
        summary: str | None = None,
        payload_hash: str | None = None,
    ) -> None:
        """Add details to the row; None leaves a field as it is."""
        self.collection = collection if collection is not None else self.collection
        self.object_id = str(object_id) if object_id is not None else self.object_id
        self.summary = summary if summary is not None else self.summary
        self.payload_hash = payload_hash or self.payload_hash


def intent_of(request: Request) -> AuditIntent:
    """The request's intent (AuditTrail put it there; a fresh one if it did not)."""
    state = request.scope.setdefault("state", {})
    intent: AuditIntent | None = state.get(STATE_KEY)
    if intent is None:
        intent = state[STATE_KEY] = AuditIntent()
    return intent


AuditDep = Annotated[AuditIntent, Depends(intent_of)]


class Audited:
    """A route's declaration of its action (the dependency `audited` makes)."""

    def __init__(self, action: Action) -> None:
        self.action = action

    def __call__(self, request: Request) -> None:
        intent_of(request).action = self.action


def audited(action: Action) -> Any:
    """A route dependency: requests to this route are recorded as `action`."""
    return Depends(Audited(action))


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def declared_action(route: Any) -> Action | None:
    """The action a route declares with `audited`, if any (also when a request was refused
    before that dependency ran, e.g. by a router-level role check)."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    return next((c.action for c in _calls(dependant) if isinstance(c, Audited)), None)


class AuditTrail:
    """Pure ASGI middleware: records every audited request, and every 401 and 403, after
    its response (status known), in its own transaction in a worker thread."""

    def __init__(self, app: ASGIApp, settings: AuditSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        intent = AuditIntent()
        scope.setdefault("state", {})[STATE_KEY] = intent
        if not self.settings.enabled:
            await self.app(scope, receive, send)
            return
        kind = dict(scope["headers"]).get(b"content-type", b"").lower()
        # An upload's hash is its file's content hash, which the route gives.
        digest = None if kind.startswith(b"multipart/") else hashlib.sha256()
        size = 0
        status = 500

        async def hashed() -> Message:
            nonlocal size
            msg = await receive()
            body = msg.get("body", b"")
            if digest is not None and body:
                digest.update(body)
                size += len(body)
            return msg

        async def watched(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
            await send(msg)

        failed = False
        try:
            await self.app(scope, hashed, watched)
        except BaseException:
            failed = True  # the error middleware outside answers 500 (or the stream broke)
            raise
        finally:
            body_hash = digest.hexdigest() if digest is not None and size else None
            event = self.event(scope, intent, 500 if failed else status, body_hash)
            if event is not None:
                with anyio.CancelScope(shield=True):  # a client gone away still leaves a row
                    await anyio.to_thread.run_sync(_write, scope["app"], event)

    def event(
        self, scope: Scope, intent: AuditIntent, status: int, body_hash: str | None
    ) -> Event | None:
        """The row this request leaves, or None (not audited, or refused before anyone
        was identified: e.g. a malformed body sent without a key)."""
        declared = declared_action(scope.get("route"))
        if intent.auth_failed:
            action = Action.AUTH_FAILED
        elif not intent.authenticated:
            return None
        elif declared is not None:
            action = declared
        elif status == 403:
            action = Action.ACCESS_DENIED
        else:
            return None
        params = scope.get("path_params") or {}
        summary = intent.summary
        if action in (Action.AUTH_FAILED, Action.ACCESS_DENIED):
            summary = f"{scope['method']} {scope['path']}"
        elif action in QUESTION_ACTIONS and not self.settings.keep_questions:
            summary = None
        fallback_object = next((params[p] for p in _OBJECT_PARAMS if p in params), None)
        client = scope.get("client")
        return Event(
            action=action,
            outcome=Outcome.of(status),
            status=status,
            key_id=intent.key_id,
            key_prefix=intent.key_prefix,
            collection=intent.collection or params.get("name"),
            object_id=intent.object_id or (str(fallback_object) if fallback_object else None),
            payload_hash=intent.payload_hash or body_hash,
            summary=summary,
            client_ip=client[0] if client else None,
        )


def _write(app: Any, event: Event) -> None:
    """Append the row (naming the key's owner); a failure is logged, never raised: the
    response is already on its way."""
    try:
        with app.state.container.sessions() as session:
            key = session.get(ApiKey, event.key_id) if event.key_id is not None else None
            if key is not None:
                event = replace(event, actor=key.name)
            audit.record(session, event)
    except Exception:
        log.exception("could not record audit event %s", event.action.value)
