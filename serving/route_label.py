"""Which route template a request is counted under: the one place that reads Starlette's match from the scope.

Metrics label requests by template (`/v1/inventory/{sku}`), never by raw path,
so the series stay bounded whatever callers send. Starlette's router records
what it matched in the ASGI scope: `scope["route"]` for FastAPI's API routes,
only `scope["endpoint"]` for plain Starlette routes (`/docs`,
`/openapi.json`). The fast paths answer before any routing, so they record
the route they stand in for the same way (`RouteStamp`).
"""

from __future__ import annotations

from starlette.types import Scope

UNMATCHED_ROUTE = "<unmatched>"
"""The one label every request no route matched shares."""


class RouteStamp:
    """The route a fast path stands in for, as the router would leave it in the scope (only its template is read).

    >>> scope = {}
    >>> RouteStamp("/v1/inventory/{sku}").stamp(scope)
    >>> RouteLabels().of(scope)
    '/v1/inventory/{sku}'
    """

    __slots__ = ("path_format",)

    def __init__(self, template: str) -> None:
        self.path_format = template

    def stamp(self, scope: Scope) -> None:
        """Record this route as the request's match."""
        scope["route"] = self


class RouteLabels:
    """The template of the route that answered a request, read after the app has handled it.

    >>> RouteLabels().of({"type": "http", "path": "/nowhere"})
    '<unmatched>'
    """

    def __init__(self) -> None:
        self._template_of_endpoint: dict[object, str] | None = None

    def of(self, scope: Scope) -> str:
        """The matched route's template; `UNMATCHED_ROUTE` when no route matched."""
        template = getattr(scope.get("route"), "path_format", None)
        return template if isinstance(template, str) and template else self._by_endpoint(scope)

    def _by_endpoint(self, scope: Scope) -> str:
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED_ROUTE
        if self._template_of_endpoint is None:  # the app's routes are fixed once it serves
            routes = getattr(scope.get("app"), "routes", ())
            self._template_of_endpoint = {
                getattr(r, "endpoint", None): r.path_format for r in routes if hasattr(r, "path_format")
            }
        return self._template_of_endpoint.get(endpoint, UNMATCHED_ROUTE)
