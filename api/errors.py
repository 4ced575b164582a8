"""Every error → HTTP in one place: domain errors, validation, routing and the unexpected."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from api.ratelimit import RateLimitedError
from api.schemas import ErrorOut
from data import errors as e
from llm.types import LLMBusyError, LLMUnavailableError, PromptTooLongError

log = logging.getLogger(__name__)

STATUS: dict[type[e.DomainError], int] = {
    e.UnauthorizedError: 401,
    e.NotFoundError: 404,
    e.ForbiddenError: 403,
    e.ConflictError: 409,
    e.EmbedderMismatchError: 409,
    e.InvalidInputError: 422,
    e.TooLargeError: 413,
    e.UnsupportedTypeError: 415,
    e.UnavailableError: 503,
}
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
_MAX_ERRORS = 5  # validation errors named in one message
_MAX_MESSAGE = 1000  # characters: an error never echoes a large input back
_DESCRIPTIONS = {
    400: "Malformed body (not UTF-8 JSON, broken multipart)",
    401: "No API key, or an unknown or revoked one",
    403: "Not allowed to this key's role, or by the server's configuration",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Request body (or the prompt it makes) too large",
    415: "Unsupported file type",
    422: "Invalid input",
    429: "The key's rate limit is reached, or the model is busy; retry after Retry-After s",
    503: "Unavailable (e.g. the model is down)",
}
_RETRY_AFTER = {"description": "seconds to wait", "schema": {"type": "integer"}}
_WWW_AUTHENTICATE = {"description": "the scheme to use: Bearer", "schema": {"type": "string"}}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    """The one error body shape; `details` adds keys beside `error` and `message`."""
    content = {**(details or {}), "error": code, "message": message}
    return JSONResponse(status_code=status, content=content)


def describe(exc: Exception) -> tuple[int, str, str]:
    """(status, code, message) of an error a request met, for a response or a stream event;
    anything unexpected is a 500 whose details stay in the log."""
    if isinstance(exc, e.DomainError):
        status = next((s for t, s in STATUS.items() if isinstance(exc, t)), 400)
        return status, exc.code, _clip(exc.message, _MAX_MESSAGE)
    if isinstance(exc, PromptTooLongError):  # the user's text, not the server, is too long
        return 413, "prompt_too_long", _clip(str(exc), _MAX_MESSAGE)
    if isinstance(exc, LLMBusyError):
        return 429, "busy", str(exc)
    if isinstance(exc, LLMUnavailableError):
        return 503, "llm_unavailable", str(exc)
    return 500, "internal", "internal server error; the details are in the log"


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    resp = error_response(*describe(exc))
    if isinstance(exc, e.UnauthorizedError):
        resp.headers["WWW-Authenticate"] = "Bearer"
    return resp


async def _llm_busy(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LLMBusyError)
    resp = error_response(429, "busy", str(exc))
    resp.headers["Retry-After"] = str(exc.retry_after_s)
    return resp


async def _rate_limited(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitedError)
    resp = error_response(429, "rate_limited", str(exc))
    resp.headers["Retry-After"] = str(exc.retry_after_s)
    return resp


async def _described(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(*describe(exc))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validation_message(errors: list[Any]) -> str:
    """A short summary of validation errors: where and what, never the input sent."""
    parts = []
    for err in errors[:_MAX_ERRORS]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{_clip(where, 100)}: {_clip(str(err.get('msg', 'invalid')), 200)}")
    if len(errors) > _MAX_ERRORS:
        parts.append(f"and {len(errors) - _MAX_ERRORS} more")
    return "; ".join(parts) or "invalid request"


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid", validation_message(list(exc.errors())))


def _allowed(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    root = request.scope.get("root_path", "")
    path = {"type": "http", "path": request.url.path, "root_path": root}
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**path, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    code = _HTTP_CODES.get(status) or phrase.lower().replace(" ", "_").replace("-", "_")
    message = exc.detail if isinstance(exc.detail, str) else phrase
    resp = error_response(status, code, _clip(message, _MAX_MESSAGE))
    resp.headers.update(exc.headers or {})
    if status == 405 and (allowed := _allowed(request)):
        resp.headers["Allow"] = allowed
    return resp


async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    # A value SQL refuses (a NUL character in PostgreSQL text, a number out of range) came
    # from the request; the statement and its parameters stay in the log.
    log.warning("refused by SQL on %s %s: %s", request.method, request.url.path, exc)
    message = "a value in the request cannot be stored (a NUL character, a number too large)"
    return error_response(422, "invalid", message)


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log, never to the client.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal server error; the details are in the log")


def install(app: FastAPI) -> None:
    """Register the handlers on `app`: every error answers {"error", "message"}."""
    app.add_exception_handler(e.DomainError, _domain_error)
    app.add_exception_handler(LLMBusyError, _llm_busy)
    app.add_exception_handler(RateLimitedError, _rate_limited)
    app.add_exception_handler(LLMUnavailableError, _described)
    app.add_exception_handler(PromptTooLongError, _described)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(Exception, _internal)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the error statuses a route can answer, all as ErrorOut."""
    docs: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        docs[status] = {"model": ErrorOut, "description": _DESCRIPTIONS[status]}
        if status == 429:
            docs[status]["headers"] = {"Retry-After": _RETRY_AFTER}
        if status == 401:
            docs[status]["headers"] = {"WWW-Authenticate": _WWW_AUTHENTICATE}
    return docs
