"""Domain errors → HTTP, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from data import errors as e

STATUS: dict[type[e.DomainError], int] = {
    e.NotFoundError: 404,
    e.ConflictError: 409,
    e.EmbedderMismatchError: 409,
    e.InvalidInputError: 422,
    e.TooLargeError: 413,
    e.UnsupportedTypeError: 415,
}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The one error body shape."""
    return JSONResponse(status_code=status, content={"error": code, "message": message})


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.DomainError)
    status = next((s for t, s in STATUS.items() if isinstance(exc, t)), 400)
    return error_response(status, exc.code, exc.message)


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(e.DomainError, _domain_error)
