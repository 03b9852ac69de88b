"""Answers sent in plain ASGI, for the fast paths that serve hot reads ahead of FastAPI's routing.

A fast path skips the framework (docs/performance.md, "The API: the framework
is the cost": routing and dependency solving are most of a stored-bytes
read's time), so it sends its answers itself: a JSON body as two ASGI
messages, or one of the contract's error responses (`serving.errors`) run as
the ASGI app a Starlette response is.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from serving.errors import backend_error

_JSON = (b"content-type", b"application/json")


async def send_json(send: Send, body: bytes, status: int = 200) -> None:
    """Send `body`, JSON already shaped, with its length."""
    await send({"type": "http.response.start", "status": status,
                "headers": [_JSON, (b"content-length", b"%d" % len(body))]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def send_response(response: Response, scope: Scope, receive: Receive, send: Send) -> None:
    """Send a response built as a FastAPI handler would return it (the contract's error bodies)."""
    await response(scope, receive, send)


async def send_backend_error(exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
    """Send the 503 the API answers to a Redis failure (and log it, as its exception handler does)."""
    await send_response(await backend_error(Request(scope), exc), scope, receive, send)
