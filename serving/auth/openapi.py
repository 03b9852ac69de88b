"""The API keys in the OpenAPI schema: the two ways to send one, and the role each operation needs.

Every operation gets `security` (empty for public paths) and `x-required-role`, read from
`serving.auth.roles.required_role`, the same function the middleware asks: the docs, the
fuzz test and the auth tests that walk the schema cannot disagree with what is enforced.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from serving.auth.roles import required_role, resource_of

_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
_ERRORS = {
    "401": "No valid API key (`unauthorized`).",
    "403": "The key's role is too low for this route (`forbidden`).",
    "429": "The key's rate limit is spent (`rate_limited`); see `Retry-After`.",
}


def install_security_schema(app: FastAPI) -> None:
    """Make `app.openapi()` describe the API keys and each operation's role."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = _SCHEMES
            served = frozenset(r for r in map(resource_of, schema.get("paths", {})) if r is not None)
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    role = required_role(method.upper(), path, served)
                    if role is None:
                        operation["security"] = []
                        continue
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
                    operation["x-required-role"] = role.label
                    responses = operation.setdefault("responses", {})
                    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
                    for status, description in _ERRORS.items():
                        responses.setdefault(
                            status,
                            {"description": description, "content": {"application/json": {"schema": error_ref}}},
                        )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
