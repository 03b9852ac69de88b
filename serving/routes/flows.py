"""`GET /v1/flows`: each flow's health as its sink workers report it, and the dead-letter stream's figures.

Per flow: when it last wrote (RFC 3339), the event-time lag of the median record in that write,
records written and dead letters by reason since its workers started, its Kafka consumer lag
(messages not read yet, summed and per topic), when it last closed an epoch and its last
heartbeat; `per_worker` gives each worker's own (`state.flow_health`). A flow that has not
written for a while is idle (lag 0, epochs going on) or stuck (lag growing, or no heartbeat).
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from events.timestamps import rfc3339_ms
from serving.schemas import error_responses
from state.flow_health import TIME_FIELDS, FlowHealthReader

router = APIRouter(prefix="/v1/flows", tags=["operations"], responses=error_responses(503))


@router.get("")
async def read_flows(request: Request) -> Response:
    """Flow health: last write, event-time lag, records, dead letters, consumer lag, last epoch (per flow and
    worker), and the dead-letter stream."""
    health = await FlowHealthReader(request.app.state.redis).read()
    for flow in health["flows"]:
        for doc in (flow, *flow["per_worker"]):
            for field in TIME_FIELDS:
                at = doc[field]
                doc[field] = None if at is None else rfc3339_ms(at)
    return Response(orjson.dumps(health), media_type="application/json")
