"""The API-key check in front of every route, the fast paths included.

Pure ASGI, placed outside `serving.fast_paths` (which answers
before FastAPI's routing, where a dependency would never run) and inside the metrics
middleware, so refused requests are counted too. Per request it reads one header, looks
the key up in the in-process cache (`serving.auth.keys`) and takes a token from the key's
bucket (`serving.auth.rate_limit`): a few microseconds, no Redis round trip on a cache hit.

Answers, in the contract's error body: 401 `unauthorized` without a valid key (with
`WWW-Authenticate: Bearer`), 403 `forbidden` when the key's role is below the route's
(`serving.auth.roles`), 429 `rate_limited` with `Retry-After` past the key's rate. The
key itself is never logged, labelled or echoed; errors name the key's id at most.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from redis.exceptions import RedisError
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi_answers import send_backend_error, send_response
from serving.auth.keys import KeyCache
from serving.auth.rate_limit import RateLimiter, retry_after
from serving.auth.roles import RESOURCE_ROLES, Role, required_role, resource_of
from serving.errors import error_response
from serving.route_label import RouteStamp

PRINCIPAL_SCOPE_KEY = "omnistream.principal"
"""Where an admitted request's `Principal` is left in the ASGI scope (`GET /v1/session` reads it)."""
_BEARER = b"bearer "
_MISSING = "missing API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
_INVALID = "invalid API key (unknown or revoked)"


def route_templates(api: FastAPI) -> Iterator[str]:
    """Every path template of `api`'s routes, those of included routers too.

    >>> from fastapi import APIRouter
    >>> api, router = FastAPI(docs_url=None, openapi_url=None), APIRouter(prefix="/v1/items")
    >>> _ = router.get("/{item_id}")(lambda item_id: None)
    >>> api.include_router(router)
    >>> list(route_templates(api))
    ['/v1/items/{item_id}']
    """
    yield from _templates_of(api.router.routes, "")


def _templates_of(routes: Iterable[Any], prefix: str) -> Iterator[str]:
    for route in routes:
        template = getattr(route, "path_format", None)
        if isinstance(template, str):
            yield prefix + template
        included = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
        if included is not None:
            context_prefix = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            yield from _templates_of(included.routes, prefix + context_prefix)


def presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The key a request carries (`Authorization: Bearer` first, else `X-API-Key`), or None.

    >>> presented_key([(b"authorization", b"Bearer osk_1")]), presented_key([(b"x-api-key", b" osk_2 ")])
    (b'osk_1', b'osk_2')
    >>> presented_key([(b"authorization", b"Basic Zm9v")]) is None
    True
    """
    api_key = None
    for name, value in headers:
        if name == b"authorization":
            if value[:7].lower() == _BEARER:
                return value[7:].strip() or None
        elif name == b"x-api-key":
            api_key = value.strip() or None
    return api_key


class ApiKeyAuth:
    """Pure ASGI middleware: refuse (401/403/429) or pass the request on to `app`."""

    def __init__(
        self, app: ASGIApp, api: FastAPI, limiter: RateLimiter, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.api = api
        self.limiter = limiter
        self.clock = clock
        self._templates: list[tuple[re.Pattern[str], RouteStamp]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        needed = required_role(scope["method"], scope["path"])
        if needed is None:
            await self.app(scope, receive, send)
            return
        if needed is Role.ADMIN and resource_of(scope["path"]) not in RESOURCE_ROLES and self._route(scope) is None:
            needed = Role.STOREFRONT  # no such route: any valid key may learn that (404)
        key = presented_key(scope["headers"])
        if key is None:
            await self._refuse(401, "unauthorized", _MISSING, scope, receive, send, {"WWW-Authenticate": "Bearer"})
            return
        cache: KeyCache = self.api.state.key_cache
        now = self.clock()
        try:
            principal = await cache.principal(key, now)
        except (RedisError, OSError) as exc:
            self._stamp_route(scope)
            await send_backend_error(exc, scope, receive, send)
            return
        if principal is None:
            await self._refuse(401, "unauthorized", _INVALID, scope, receive, send, {"WWW-Authenticate": "Bearer"})
            return
        if principal.role < needed:
            message = f"this key's role ({principal.role.label}) may not call {scope['path']}; it needs {needed.label}"
            await self._refuse(403, "forbidden", message, scope, receive, send)
            return
        wait_s = self.limiter.wait_s(principal.key_id, principal.rate_per_s, now)
        if wait_s > 0.0:
            message = f"rate limit of key {principal.key_id} exceeded; retry after the Retry-After seconds"
            headers = {"Retry-After": retry_after(wait_s)}
            await self._refuse(429, "rate_limited", message, scope, receive, send, headers)
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.app(scope, receive, send)

    def _route(self, scope: Scope) -> RouteStamp | None:
        """The template of the app's route for the request's path (any method), or None.

        Only refused requests and unlisted resources ask, so admitted ones pay nothing for it.
        """
        if self._templates is None:  # the app's routes are fixed once it serves
            self._templates = [(compile_path(t)[0], RouteStamp(t)) for t in sorted(set(route_templates(self.api)))]
        path: str = scope["path"]
        for pattern, stamp in self._templates:
            if pattern.match(path):
                return stamp
        return None

    def _stamp_route(self, scope: Scope) -> None:
        """Record the route a refused request was for, so metrics count it under its template."""
        stamp = self._route(scope)
        if stamp is not None:
            stamp.stamp(scope)

    async def _refuse(
        self,
        status: int,
        code: str,
        message: str,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._stamp_route(scope)
        await send_response(error_response(status, code, message, headers), scope, receive, send)
