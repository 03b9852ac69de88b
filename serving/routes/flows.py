"""`GET /v1/flows`: each flow's health as its sink workers report it, and the dead-letter stream's figures.

Per flow: when it last wrote (RFC 3339), the event-time lag of the median record in that write,
records written and dead letters by reason since its workers started (`state.flow_health`).
A flow that has not written for a while is idle or stuck: the console shows the age.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from events.timestamps import rfc3339_ms
from serving.schemas import error_responses
from state.flow_health import FlowHealthReader

router = APIRouter(prefix="/v1/flows", tags=["operations"], responses=error_responses(503))


@router.get("")
async def read_flows(request: Request) -> Response:
    """Flow health: last write, event-time lag, records, dead letters (per flow), and the dead-letter stream."""
    health = await FlowHealthReader(request.app.state.redis).read()
    for flow in health["flows"]:
        written = flow["last_write_at"]
        flow["last_write_at"] = None if written is None else rfc3339_ms(written)
    return Response(orjson.dumps(health), media_type="application/json")
