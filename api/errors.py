"""Domain errors → HTTP, in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from data import errors as e
from llm.types import LLMBusyError, LLMUnavailableError

STATUS: dict[type[e.DomainError], int] = {
    e.NotFoundError: 404,
    e.ForbiddenError: 403,
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


async def _llm_busy(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LLMBusyError)
    resp = error_response(429, "busy", str(exc))
    resp.headers["Retry-After"] = str(exc.retry_after_s)
    return resp


async def _llm_down(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(503, "llm_unavailable", str(exc))


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(e.DomainError, _domain_error)
    app.add_exception_handler(LLMBusyError, _llm_busy)
    app.add_exception_handler(LLMUnavailableError, _llm_down)
