"""Probes (CONTRACT.md): `/healthz` says the process is up, `/readyz` that Redis answers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from serving.backend import ping
from serving.deps import RedisDep, SettingsDep
from serving.schemas import Status, error_responses

router = APIRouter(tags=["health"])

_OK = b'{"status":"ok"}'
_READY = b'{"status":"ready"}'


@router.get("/healthz", responses={200: {"model": Status}})
async def read_health() -> Response:
    """Always 200 while the process serves requests; says nothing about Redis."""
    return Response(_OK, media_type="application/json")


@router.get("/readyz", responses={200: {"model": Status}, **error_responses(503)})
async def read_readiness(redis: RedisDep, settings: SettingsDep) -> Response:
    """200 when Redis answers PING within the API's Redis timeout, else 503."""
    await ping(redis, settings.api.redis_timeout_ms / 1000)
    return Response(_READY, media_type="application/json")
