"""`GET /v1/recommendations` answered in plain ASGI, ahead of FastAPI's routing (as `serving.fast_path` does
for stock reads).

Storefronts call it on every product and home page. FastAPI's routing, query
validation and dependency solving cost about as much as the two Redis round
trips (docs/performance.md: the framework dominates), so well-formed requests are
parsed here and answered by the same `Recommender` the route uses; anything
this declines (a bad or repeated parameter, HEAD, ...) goes on to the
FastAPI route, which answers it, 422s included.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import FastAPI
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi_answers import send_backend_error, send_json
from serving.route_label import RouteStamp
from serving.routes.recommendations import ROUTE, parse_query

_ROUTE = RouteStamp(ROUTE)


class RecommendationsFastPath:
    """Pure ASGI middleware serving well-formed recommendation requests; the rest goes to `app`."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == ROUTE:
            try:
                query = scope["query_string"].decode()
                params = parse_query(parse_qsl(query, keep_blank_values=True, strict_parsing=False))
            except UnicodeDecodeError:
                params = None
            if params is not None:
                _ROUTE.stamp(scope)
                try:
                    body: bytes = await self.api.state.recommender.answer(params)
                except (RedisError, OSError) as exc:
                    await send_backend_error(exc, scope, receive, send)
                    return
                await send_json(send, body)
                return
        await self.app(scope, receive, send)
