"""The contract's error body, `{"error": {"code", "message"}}`, for every failure the API can have.

Status and code (CONTRACT.md "HTTP API"): 404 `not_found` (unknown entity or route), 422
`invalid_parameter` (the message names the parameter), 503 `backend_unavailable` (Redis down,
refusing or too slow: answered within the Redis timeout, never a hang), 500 `internal_error`
(nothing about the cause leaks to the caller; the server logs it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_CODE_OF_STATUS = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    422: "invalid_parameter",
    429: "rate_limited",
    503: "backend_unavailable",
}


class ApiError(Exception):
    """A failure the API answers on purpose; the subclass fixes status and code."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ApiError):
    """The entity asked for has no record (404)."""

    status_code = 404
    code = "not_found"


class InvalidParameter(ApiError):
    """A parameter the route's own checks refuse (422); the message starts with its name."""

    status_code = 422
    code = "invalid_parameter"

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter


def error_response(status_code: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The contract's error body with `status_code`."""
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


def _phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "error"


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette's own: unknown route (404), wrong method (405).
    assert isinstance(exc, StarletteHTTPException)
    code = _CODE_OF_STATUS.get(exc.status_code, "http_error")
    if exc.status_code == 404 and "route" not in request.scope:
        message = f"no route matches {request.url.path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "GET")
        message = f"{request.method} is not allowed here; use {allowed}"
    else:
        message = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    # loc is ("path" | "query" | "header" | "body", name, ...): the name is what the caller typed.
    names = [str(part) for part in first.get("loc", ())[1:]]
    parameter = ".".join(names) or "request"
    message = f"{parameter}: {first.get('msg', 'invalid value')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return error_response(422, "invalid_parameter", message)


async def backend_error(request: Request, exc: Exception) -> Response:
    """The 503 answer to a Redis failure (also used by `serving.fast_paths`)."""
    # Redis refused, reset or timed out (redis-py's errors, or the API's own deadline:
    # builtin TimeoutError is an OSError). The cause stays in the log: it names hosts.
    log.warning("%s %s: backend unavailable: %s", request.method, request.url.path, type(exc).__name__)
    timed_out = isinstance(exc, TimeoutError | RedisTimeoutError)
    message = "Redis did not answer in time; retry shortly" if timed_out else "Redis is unavailable; retry shortly"
    return error_response(503, "backend_unavailable", message, headers={"Retry-After": "1"})


async def _internal_error(_: Request, __: Exception) -> Response:
    # Starlette's ServerErrorMiddleware calls this and then re-raises, so the server logs the traceback.
    return error_response(500, "internal_error", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of `app` the contract's JSON body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RedisError, backend_error)
    app.add_exception_handler(OSError, backend_error)
    app.add_exception_handler(Exception, _internal_error)
