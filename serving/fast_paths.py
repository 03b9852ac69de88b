"""The hot reads answered in plain ASGI, ahead of FastAPI's routing.

Storefronts, tills and consoles poll a handful of reads far more than anything else (a SKU's stock,
recommendations, fulfilment options, a customer, a forecast, a loyalty balance, a reservation's
decision), and on them the framework is the cost: docs/performance.md measured FastAPI's routing,
query validation and dependency solving at more than the handlers' own work, most of it Python
per request. So each such route hands this middleware a `FastRoute`: the route's template and a
`FastAnswer` that turns the path's last segment and the query's pairs into the JSON body, or into
None for anything it does not take (a bad or repeated parameter, a value over its length, ...).
What it declines goes on to the FastAPI route, which documents the endpoint and answers the 422s.
An `ApiError` the answer raises (a 404, a refused combination) is answered here in the contract's
shape, a Redis failure with the 503 the route would give; the request is counted under the
route's template, as if the router had matched it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import FastAPI
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi_answers import send_backend_error, send_json, send_response
from serving.errors import ApiError, error_response
from serving.route_label import RouteStamp

FastAnswer = Callable[[FastAPI, str, Sequence[tuple[str, str]]], Awaitable[bytes | None]]
"""(the app, the path parameter or "" for a route without one, the query's pairs) -> the body, or None."""


@dataclass(frozen=True, slots=True)
class FastRoute:
    """A GET route this middleware answers: `/v1/x` (no path parameter) or `/v1/x/{id}` (one, last).

    `max_segment` is the longest path parameter the route's declaration accepts (longer ones get
    its 422); `query` says whether the answer reads the query string at all.
    """

    template: str
    answer: FastAnswer
    max_segment: int = 256
    query: bool = True

    @property
    def prefix(self) -> str:
        """`/v1/x/` for `/v1/x/{id}`; the whole path for a route without a parameter."""
        head, brace, _ = self.template.partition("{")
        return head if brace else self.template


class FastPaths:
    """Pure ASGI middleware serving the `FastRoute`s it is given; every other request goes to `app`."""

    def __init__(self, app: ASGIApp, api: FastAPI, routes: Sequence[FastRoute]) -> None:
        self.app = app
        self.api = api
        self._exact = {r.prefix: (r, RouteStamp(r.template)) for r in routes if "{" not in r.template}
        self._by_prefix = {r.prefix: (r, RouteStamp(r.template)) for r in routes if "{" in r.template}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            found = self._exact.get(path)
            segment = ""
            if found is None:
                head, _, segment = path.rpartition("/")
                found = self._by_prefix.get(head + "/") if segment else None
                if found is not None and len(segment) > found[0].max_segment:
                    found = None
            if found is not None and await self._serve(found[0], found[1], segment, scope, receive, send):
                return
        await self.app(scope, receive, send)

    async def _serve(self, route: FastRoute, stamp: RouteStamp, segment: str, scope: Scope, receive: Receive,
                     send: Send) -> bool:  # fmt: skip
        """Answer the request and say True, or say False to let the FastAPI route answer it."""
        pairs: Sequence[tuple[str, str]] = ()
        if route.query and scope["query_string"]:
            try:
                pairs = parse_qsl(scope["query_string"].decode(), keep_blank_values=True, strict_parsing=False)
            except UnicodeDecodeError:
                return False
        stamp.stamp(scope)
        try:
            body = await route.answer(self.api, segment, pairs)
        except ApiError as exc:
            await send_response(error_response(exc.status_code, exc.code, exc.message), scope, receive, send)
            return True
        except (RedisError, OSError) as exc:
            await send_backend_error(exc, scope, receive, send)
            return True
        if body is None:
            return False
        await send_json(send, body)
        return True
