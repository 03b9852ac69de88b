"""`GET /v1/session`: which key is calling and with what role (the console shows it after log-in)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from serving.auth.keys import Principal
from serving.auth.middleware import PRINCIPAL_SCOPE_KEY
from serving.auth.roles import Role

router = APIRouter(prefix="/v1/session", tags=["auth"])


class Session(BaseModel):
    key_id: str | None = Field(description="The calling key's id (never the key); null when auth is off.")
    role: str = Field(description="storefront, console or admin.")
    auth: bool = Field(description="False only in the development mode without keys.")


@router.get("", response_model=Session)
async def read_session(request: Request) -> Session:
    """The calling key's id and role."""
    principal: Principal | None = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:  # auth off: every caller may do everything
        return Session(key_id=None, role=Role.ADMIN.label, auth=False)
    return Session(key_id=principal.key_id, role=principal.role.label, auth=True)
