"""`GET /v1/inventory/{sku}` answered in plain ASGI, ahead of FastAPI's routing.

Storefronts and consoles poll this one read far more than anything else, and
on it the framework is the cost: docs/performance.md measured a framework-free ASGI
app at ~5x FastAPI's requests/s, and FastAPI's routing plus dependency
solving are most of this route's time (the handler itself returns bytes the
flow already shaped). So this middleware serves exactly that request —
same body, same errors, same metrics label — and passes every other request
through. The FastAPI route stays: it documents the endpoint in OpenAPI and
answers what this declines (HEAD, over-long SKUs that get the 422, ...).
"""

from __future__ import annotations

from fastapi import FastAPI
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.asgi_answers import send_backend_error, send_json, send_response
from serving.errors import error_response
from serving.route_label import RouteStamp
from serving.routes.inventory import MAX_ID_LENGTH, SKU_ROUTE, missing_sku_message

_PREFIX = SKU_ROUTE.split("{", 1)[0]  # "/v1/inventory/"
_ROUTE = RouteStamp(SKU_ROUTE)


class StockFastPath:
    """Pure ASGI middleware serving single-SKU stock reads; the rest goes to `app`.

    Sits inside the metrics middleware and stamps the request with the template
    of the route it stands in for, so it is counted under `/v1/inventory/{sku}`.
    """

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(_PREFIX):
                sku = path[len(_PREFIX) :]
                if sku and "/" not in sku and len(sku) <= MAX_ID_LENGTH:
                    await self._serve(sku, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, sku: str, scope: Scope, receive: Receive, send: Send) -> None:
        _ROUTE.stamp(scope)
        try:
            doc: bytes | None = await self.api.state.stock_reader.sku(sku)
        except (RedisError, OSError) as exc:
            await send_backend_error(exc, scope, receive, send)
            return
        if doc is None:
            await send_response(error_response(404, "not_found", missing_sku_message(sku)), scope, receive, send)
            return
        await send_json(send, doc)
