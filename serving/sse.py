"""Server-sent events over a Redis stream: one helper for every live feed of the API (alerts, triggers).

A feed is a Redis stream that mirrors an output topic; each entry's stream id is the SSE event
`id`, so a client resumes where it stopped with the standard `Last-Event-ID` header (browsers'
EventSource sends it by itself on reconnect). Without one, the feed starts after the newest
entry, resolved before the response starts so that an unreachable Redis is a 503 like any other
read.

The stream waits with `XREAD BLOCK` on a connection of its own (`app.state.stream_redis`): the
API's shared client times out in milliseconds so that reads fail fast, which a blocking read
must not. While nothing happens a comment line keeps proxies from closing the idle connection;
when Redis fails mid-stream the response ends with a comment and the client reconnects.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from fastapi import Request
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from omnistream.settings import Settings
from serving.errors import InvalidParameter
from state.fraud_reader import is_stream_id

log = logging.getLogger(__name__)

Tail = Callable[[aioredis.Redis, str, int], Awaitable[list[tuple[str, Any]]]]
"""Reads entries after a stream id, blocking up to the given ms: `(stream_id, record or empty/None)` each."""

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def resume_after(last_event_id: str | None) -> str | None:
    """The stream id a reconnecting client gave in `Last-Event-ID`, or `InvalidParameter`; None without one.

    >>> resume_after(" 1795305600000-0 "), resume_after(None)
    ('1795305600000-0', None)
    >>> resume_after("nope")
    Traceback (most recent call last):
    ...
    serving.errors.InvalidParameter: Last-Event-ID: expected a stream_id such as 1795305600000-0
    """
    if last_event_id is None:
        return None
    stripped = last_event_id.strip()
    if not is_stream_id(stripped):
        raise InvalidParameter("Last-Event-ID", "expected a stream_id such as 1795305600000-0")
    return stripped or None


async def stream_response(
    request: Request,
    settings: Settings,
    *,
    event: str,
    tail: Tail,
    newest_id: Callable[[], Awaitable[str]],
    last_event_id: str | None,
    accepts: Callable[[Any], bool],
) -> StreamingResponse:
    """The SSE response of a feed: entries `tail` reads, as `event` events, those `accepts` takes.

    Resumes after `last_event_id` when given (checked here, a 422 when unusable), else after the
    feed's newest entry (`newest_id`).
    """
    after = resume_after(last_event_id)
    start_id = after if after is not None else await newest_id()
    client: aioredis.Redis = request.app.state.stream_redis
    keepalive_ms = int(settings.api.sse_keepalive_s * 1000)
    return StreamingResponse(
        events(client, tail, start_id, event, accepts, keepalive_ms), media_type="text/event-stream", headers=HEADERS
    )


async def events(
    client: aioredis.Redis,
    tail: Tail,
    after_id: str,
    event: str,
    accepts: Callable[[Any], bool],
    keepalive_ms: int,
) -> AsyncIterator[bytes]:
    """The body of a feed's response: each accepted record as `id`/`event`/`data`, keep-alives between."""
    # `retry` tells EventSource clients how soon to reconnect (with Last-Event-ID) if we end.
    yield b"retry: 1000\n: connected\n\n"
    name = event.encode()
    while True:
        try:
            entries = await tail(client, after_id, keepalive_ms)
        except (RedisError, OSError) as ex:
            log.warning("%s stream: backend unavailable (%s); closing, the client resumes", event, type(ex).__name__)
            yield b": backend unavailable; reconnect with Last-Event-ID\n\n"
            return
        if not entries:
            yield b": keep-alive\n\n"
            continue
        chunk = []
        for entry_id, record in entries:
            after_id = entry_id  # a record not accepted (or not readable) still moves the cursor past it
            if record and accepts(record):
                chunk.append(b"id: %b\nevent: %b\ndata: %b\n\n" % (entry_id.encode(), name, orjson.dumps(record)))
        if chunk:
            yield b"".join(chunk)
