"""The roles API keys carry, and which role each resource of the API needs.

Roles are nested: `storefront` ⊂ `console` ⊂ `admin`, so a key may call everything a lower
role may. A request's resource is the path segment after `/v1/` (`/v1/inventory/SKU-1` is
`inventory`); `RESOURCE_ROLES` names the role each one needs, `METHOD_ROLES` the few
(method, resource) pairs that need more than their resource. A `/v1/` resource the app serves
but neither table lists needs `admin`: a route added without a decision here is closed rather
than open. One the app does not serve at all needs any valid key, which then gets the 404.

Public paths (no key): the console page and its assets (the page logs in with a key the user
types), the probes, the OpenAPI schema and docs, and `/metrics` (counters labelled by route
template and status only; scrape it from inside the network).
"""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    """An API key's role; a higher role may do everything a lower one may."""

    STOREFRONT = 1
    CONSOLE = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        """The role's name as keys, the CLI and errors spell it (`storefront`)."""
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Role:
        """The role named `name`; `ValueError` listing the roles otherwise.

        >>> Role.parse("console") >= Role.STOREFRONT
        True
        """
        try:
            return cls[name.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {name!r}; expected one of {', '.join(r.label for r in cls)}") from None


RESOURCE_ROLES: dict[str, Role] = {
    # storefront: what a shop page or a till asks
    "inventory": Role.STOREFRONT,
    "recommendations": Role.STOREFRONT,
    "fulfilment": Role.STOREFRONT,
    "fulfillment": Role.STOREFRONT,
    "reservations": Role.STOREFRONT,
    "forecasts": Role.STOREFRONT,
    "session": Role.STOREFRONT,  # who am I: any valid key
    # console: stores' and alert desks' screens
    "alerts": Role.CONSOLE,
    "scores": Role.CONSOLE,
    "experiments": Role.CONSOLE,
    "flows": Role.CONSOLE,
    "segments": Role.CONSOLE,
    "customers": Role.CONSOLE,
    "suggestions": Role.CONSOLE,
    "attribution": Role.CONSOLE,
    "loyalty": Role.CONSOLE,
    "orders": Role.CONSOLE,
    "triggers": Role.CONSOLE,  # the customers flow's trigger stream
    # admin: changes to how the system runs
    "keys": Role.ADMIN,
    "rules": Role.ADMIN,
}
"""The role each `/v1/<resource>` needs for reading; anything unlisted needs `admin`."""

METHOD_ROLES: dict[tuple[str, str], Role] = {
    ("POST", "loyalty"): Role.ADMIN,  # redemptions on a shopper's behalf
}
"""(method, resource) pairs that need a higher role than their resource does."""

PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/favicon.ico"})
PUBLIC_PREFIXES = ("/console/",)


def resource_of(path: str) -> str | None:
    """The resource of a `/v1/` path, None for any other.

    >>> resource_of("/v1/inventory/SKU-1"), resource_of("/v1/alerts"), resource_of("/docs")
    ('inventory', 'alerts', None)
    """
    if not path.startswith("/v1/"):
        return None
    end = path.find("/", 4)
    return path[4:] if end < 0 else path[4:end]


def required_role(method: str, path: str, served: frozenset[str] | None = None) -> Role | None:
    """The role a request needs, or None for a public path.

    `served`, when known, is every resource the app has routes for: an unlisted resource outside
    it needs only a valid key (for its 404).

    >>> required_role("GET", "/v1/inventory/SKU-1"), required_role("GET", "/v1/alerts/stream")
    (<Role.STOREFRONT: 1>, <Role.CONSOLE: 2>)
    >>> required_role("GET", "/v1/something-new", frozenset({"something-new"}))
    <Role.ADMIN: 3>
    >>> required_role("GET", "/v1/nothing-here", frozenset({"something-new"}))
    <Role.STOREFRONT: 1>
    >>> required_role("GET", "/healthz") is None
    True
    """
    if path.startswith("/v1/"):
        end = path.find("/", 4)
        resource = path[4:] if end < 0 else path[4:end]
        needed = RESOURCE_ROLES.get(resource)
        if needed is None:
            needed = Role.STOREFRONT if served is not None and resource not in served else Role.ADMIN
        if METHOD_ROLES:
            needed = max(needed, METHOD_ROLES.get((method, resource), needed))
        return needed
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return None
    return Role.ADMIN
