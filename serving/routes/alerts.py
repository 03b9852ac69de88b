"""`/v1/alerts`: recent alerts with filters, and a live server-sent-events stream of new ones.

Both read the Redis stream that mirrors `omni.alerts` (the flows add each alert once).
The list is newest first; every alert carries its `stream_id`, which is also the SSE event
`id`, so a client resumes where it stopped: `since=<stream_id>` on the list, the standard
`Last-Event-ID` header on the stream (browsers' EventSource sends it by itself on reconnect).

The stream is `serving.sse`'s, like the triggers stream's (`XREAD BLOCK` on a connection of
its own, keep-alive comments, resume with `Last-Event-ID`).
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse

from events.alerts import Severity
from serving.deps import FraudReaderDep, SettingsDep
from serving.errors import InvalidParameter
from serving.schemas import AlertList, error_responses
from serving.sse import stream_response
from state.fraud_reader import AlertFilter, is_stream_id, parse_time, tail_alerts

MAX_LIMIT = 1000
MAX_FILTER_ITEMS = 20
_SEVERITIES = tuple(s.value for s in Severity)

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=error_responses(422, 503))

Since = Annotated[
    str | None,
    Query(
        max_length=64,
        description="RFC 3339 time (alerts whose `ts` is at or after it) or a `stream_id` (alerts added after it).",
        examples=["2026-11-22T00:00:00Z", "1795305600000-0"],
    ),
]
SeverityParam = Annotated[
    str | None, Query(max_length=200, description="Comma-separated: warning, attention, emergency.")
]
KindParam = Annotated[
    str | None, Query(max_length=400, description="Comma-separated alert kinds (fraud, anomaly, oversell, ...).")
]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most alerts returned (newest first).")]


def _list_param(name: str, raw: str | None, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The distinct non-empty items of a comma-separated filter; `InvalidParameter` if unusable.

    >>> _list_param("severity", "attention, warning", _SEVERITIES)
    ('attention', 'warning')
    >>> _list_param("severity", "loud", _SEVERITIES)
    Traceback (most recent call last):
    ...
    serving.errors.InvalidParameter: severity: 'loud' is not one of warning, attention, emergency
    """
    if raw is None:
        return ()
    items = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not items:
        raise InvalidParameter(name, "give at least one value, or leave the parameter out")
    if len(items) > MAX_FILTER_ITEMS:
        raise InvalidParameter(name, f"at most {MAX_FILTER_ITEMS} values")
    if allowed is not None:
        for item in items:
            if item not in allowed:
                raise InvalidParameter(name, f"{item!r} is not one of {', '.join(allowed)}")
    return items


def alert_filter(since: str | None, severity: str | None, kind: str | None) -> AlertFilter:
    """The filter of a request's parameters; `InvalidParameter` names the one that is wrong."""
    since_ts: float | None = None
    after_id: str | None = None
    if since is not None:
        since = since.strip()
        if is_stream_id(since):
            after_id = since
        else:
            try:
                since_ts = parse_time(since)
            except ValueError:
                raise InvalidParameter(
                    "since", "expected an RFC 3339 time such as 2026-11-22T00:00:00Z, or a stream_id"
                ) from None
    return AlertFilter(_list_param("severity", severity, _SEVERITIES), _list_param("kind", kind), since_ts, after_id)


@router.get("", responses={200: {"model": AlertList}})
async def read_alerts(
    reader: FraudReaderDep,
    since: Since = None,
    severity: SeverityParam = None,
    kind: KindParam = None,
    limit: Limit = 100,
) -> Response:
    """Recent alerts (fraud, operational anomalies, stock), newest first, filtered."""
    items = await reader.alerts(alert_filter(since, severity, kind), limit)
    return Response(orjson.dumps({"items": items}), media_type="application/json")


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events, `event: alert`."}},
)
async def stream_alerts(
    request: Request,
    reader: FraudReaderDep,
    settings: SettingsDep,
    severity: SeverityParam = None,
    kind: KindParam = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """New alerts as they are raised (server-sent events); resumes after `Last-Event-ID` when given."""
    wanted = alert_filter(None, severity, kind)
    return await stream_response(request, settings, event="alert", tail=tail_alerts, newest_id=reader.newest_alert_id,
                                 last_event_id=last_event_id, accepts=wanted.accepts)  # fmt: skip
