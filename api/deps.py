"""FastAPI dependencies as Annotated aliases: the container, a session, the caller's scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.audit import intent_of
from api.container import Container
from data.errors import ForbiddenError, UnauthorizedError
from data.keys import authenticate, prefix_of
from data.pagination import MAX_ID
from data.scope import Role, Scope

# Documents the scheme in OpenAPI (/docs' Authorize button); the check is get_scope's.
_bearer = HTTPBearer(auto_error=False, description="an API key: `grounded keys create`")


def get_container(request: Request) -> Container:
    """The container the lifespan built."""
    container: Container = request.app.state.container
    return container


def get_session(container: Annotated[Container, Depends(get_container)]) -> Iterator[Session]:
    """One session per request, closed afterwards."""
    with container.sessions() as session:
        yield session


def get_scope(
    request: Request,
    container: Annotated[Container, Depends(get_container)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Scope:
    """What the caller's key may see and do (401 without a valid one); everything when
    authentication is off (allowed only on a loopback address). Tells the audit log who
    called, or that authentication failed (with the prefix tried, never the secret)."""
    intent = intent_of(request)
    if not container.settings.auth.enabled:
        intent.authenticated = True
        return Scope.everything()
    key = credentials.credentials if credentials is not None else None
    intent.key_prefix = prefix_of(key) if key else None
    try:
        if key is None:
            raise UnauthorizedError("an API key is required: send `Authorization: Bearer <key>`")
        with container.sessions() as session:
            scope = authenticate(session, key)
    except UnauthorizedError:
        intent.auth_failed = True
        raise
    intent.authenticated = True
    intent.key_id = scope.key_id
    return scope


ContainerDep = Annotated[Container, Depends(get_container)]
SessionDep = Annotated[Session, Depends(get_session)]
ScopeDep = Annotated[Scope, Depends(get_scope)]
# An id in a path: one the database can hold, or a 422 (a larger one would overflow SQL).
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


def require(role: Role) -> Any:
    """A route dependency: the caller's role must include `role`, else 403."""

    def check(scope: ScopeDep) -> None:
        if not scope.role.at_least(role):
            raise ForbiddenError(f"this needs a key with the {role.value} role")

    return Depends(check)
