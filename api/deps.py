"""FastAPI dependencies as Annotated aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.orm import Session

from api.container import Container
from data.pagination import MAX_ID
from data.scope import Scope


def get_container(request: Request) -> Container:
    """The container the lifespan built."""
    container: Container = request.app.state.container
    return container


def get_session(container: Annotated[Container, Depends(get_container)]) -> Iterator[Session]:
    """One session per request, closed afterwards."""
    with container.sessions() as session:
        yield session


def get_scope() -> Scope:
    """What the caller may see; everything until API keys carry a scope."""
    return Scope.everything()


ContainerDep = Annotated[Container, Depends(get_container)]
SessionDep = Annotated[Session, Depends(get_session)]
ScopeDep = Annotated[Scope, Depends(get_scope)]
# An id in a path: one the database can hold, or a 422 (a larger one would overflow SQL).
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
