"""Hot query-string reads (`GET /v1/recommendations`, `GET /v1/fulfilment/options`) answered in plain ASGI,
ahead of FastAPI's routing, as `serving.fast_path` does for stock reads.

Storefronts call these on every product page and at checkout. FastAPI's routing, query validation
and dependency solving cost as much as the Redis round trips and the answer's own work
(docs/performance.md: the framework dominates), so a route hands this middleware a `FastAnswer`:
the query's pairs in, the body out, or None for anything it does not take (a bad or repeated
parameter, ...), which goes on to the FastAPI route, the one that documents the endpoint and
answers the 422s. An `ApiError` the answer raises (a 404, a refused combination) is answered
here in the contract's shape, a Redis failure with the 503 the route would give.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qsl

from fastapi import FastAPI
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi_answers import send_backend_error, send_json, send_response
from serving.errors import ApiError, error_response
from serving.route_label import RouteStamp

FastAnswer = Callable[[FastAPI, Sequence[tuple[str, str]]], Awaitable[bytes | None]]
"""(the app, the query's pairs) -> the JSON body, or None to let the FastAPI route answer."""


class QueryFastPath:
    """Pure ASGI middleware answering well-formed GETs of one route; the rest goes to `app`.

    Sits inside the metrics middleware and stamps the request with the route it stands in for,
    so it is counted under that route's label.
    """

    def __init__(self, app: ASGIApp, api: FastAPI, route: str, answer: FastAnswer) -> None:
        self.app = app
        self.api = api
        self.route = route
        self.answer = answer
        self._stamp = RouteStamp(route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == self.route:
            try:
                pairs = parse_qsl(scope["query_string"].decode(), keep_blank_values=True, strict_parsing=False)
            except UnicodeDecodeError:
                pairs = None
            if pairs is not None:
                self._stamp.stamp(scope)
                try:
                    body = await self.answer(self.api, pairs)
                except ApiError as exc:
                    await send_response(error_response(exc.status_code, exc.code, exc.message), scope, receive, send)
                    return
                except (RedisError, OSError) as exc:
                    await send_backend_error(exc, scope, receive, send)
                    return
                if body is not None:
                    await send_json(send, body)
                    return
        await self.app(scope, receive, send)
