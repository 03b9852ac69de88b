"""Reads what the fraud flow keeps in Redis, for the API: scores, the alerts stream, model documents.

Scores are returned as the stored bytes (the flow shaped them as `GET /v1/scores/{id}` serves
them). Alerts are read from the Redis stream that mirrors `omni.alerts`, newest first, and
filtered here: alerts are few (one per incident, not one per payment), so a bounded scan of the
stream's tail answers `GET /v1/alerts` in one or two round trips.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
import redis.asyncio as aioredis

from state import keys
from state.stream_writer import RECORD_FIELD

_STREAM_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")
_RECORD_FIELD = RECORD_FIELD.encode()


def is_stream_id(value: str) -> bool:
    """Whether `value` is a Redis stream entry id (`1700000000000-0`, or just the milliseconds).

    >>> is_stream_id("1700000000000-3"), is_stream_id("2026-11-22T00:00:00Z")
    (True, False)
    """
    return bool(_STREAM_ID.match(value))


def parse_time(value: str) -> float:
    """Epoch seconds of an RFC 3339 time (`Z` or an offset); raises `ValueError` otherwise.

    >>> parse_time("2026-11-22T00:00:01.5Z")
    1795305601.5
    """
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("a time zone offset (or Z) is required")
    return parsed.timestamp()


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts a caller wants: any of `severities` / `kinds` (empty: all), at or after `since_ts`.

    `after_id` (a stream id) instead selects alerts added after that entry: the cursor a client
    resumes from (`Last-Event-ID`).

    >>> f = AlertFilter(severities=("attention",), kinds=(), since_ts=None, after_id=None)
    >>> f.accepts({"severity": "attention", "kind": "anomaly", "ts": "2026-11-22T00:00:00Z"})
    True
    >>> f.accepts({"severity": "warning", "kind": "fraud", "ts": "2026-11-22T00:00:00Z"})
    False
    """

    severities: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    since_ts: float | None = None
    after_id: str | None = None

    def accepts(self, alert: dict[str, Any]) -> bool:
        if self.severities and alert.get("severity") not in self.severities:
            return False
        if self.kinds and alert.get("kind") not in self.kinds:
            return False
        if self.since_ts is not None:
            try:
                return parse_time(str(alert.get("ts"))) >= self.since_ts
            except ValueError:
                return False
        return True


def alert_entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> dict[str, Any] | None:
    """One stream entry as the API serves it: the alert plus `stream_id`; None if it is not an alert record."""
    body = fields.get(_RECORD_FIELD)
    if body is None:
        return None
    try:
        alert = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(alert, dict):
        return None
    alert["stream_id"] = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return cast(dict[str, Any], alert)


class FraudReader:
    """Scores, alerts and model documents, one or a few Redis round trips per call.

    Parameters
    ----------
    client
        The API's asyncio client (short timeouts: a slow Redis is a fast 503).
    scan_page
        Stream entries read per round trip while filtering alerts.
    max_scanned
        Stream entries looked at, at most, for one `GET /v1/alerts`: bounds its cost
        whatever the filters (older matches are reached with `since` set to a stream id).
    """

    def __init__(self, client: aioredis.Redis, scan_page: int = 500, max_scanned: int = 20_000) -> None:
        self.scan_page = scan_page
        self.max_scanned = max_scanned
        self._client = client

    async def score(self, payment_id: str) -> bytes | None:
        """The `GET /v1/scores/{txn_or_order_id}` document, or None (never scored, or expired)."""
        doc = await self._client.hget(keys.score(payment_id), keys.DOC_FIELD)
        return cast(bytes | None, doc)

    async def alerts(self, wanted: AlertFilter, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` alerts matching `wanted`, newest first."""
        stream = keys.alerts_stream()
        found: list[dict[str, Any]] = []
        upper: str = "+"
        lower: str = f"({wanted.after_id}" if wanted.after_id else "-"
        scanned = 0
        while len(found) < limit and scanned < self.max_scanned:
            page = cast(
                list[tuple[bytes, dict[bytes, bytes]]],
                await self._client.xrevrange(stream, max=upper, min=lower, count=self.scan_page),
            )
            if not page:
                break
            scanned += len(page)
            for entry_id, fields in page:
                alert = alert_entry(entry_id, fields)
                if alert is not None and wanted.accepts(alert):
                    found.append(alert)
                    if len(found) == limit:
                        break
            if len(page) < self.scan_page:
                break
            upper = f"({page[-1][0].decode()}"
        return found

    async def newest_alert_id(self) -> str:
        """The id of the newest entry of the alerts stream (`0-0` when empty): where a live tail starts."""
        last = cast(list[tuple[bytes, dict[bytes, bytes]]], await self._client.xrevrange(keys.alerts_stream(), count=1))
        return last[0][0].decode() if last else "0-0"

    async def models(self) -> list[bytes]:
        """Every scorer shard's model document (few: one per shard)."""
        found = [key async for key in self._client.scan_iter(match=keys.fraud_model_pattern(), count=100)]
        if not found:
            return []
        pipe = self._client.pipeline(transaction=False)
        for key in sorted(found):
            pipe.hget(key, keys.DOC_FIELD)
        docs: Sequence[bytes | None] = await pipe.execute()
        return [doc for doc in docs if doc is not None]


async def tail_alerts(
    client: aioredis.Redis, after_id: str, block_ms: int, count: int = 100
) -> list[tuple[str, dict[str, Any]]]:
    """Alerts added after stream entry `after_id`, waiting up to `block_ms` for the first (XREAD BLOCK).

    `client` must be a connection of its own with a socket timeout above `block_ms`: the
    API's shared client times out in milliseconds, by design.
    """
    reply = cast(
        list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None,
        await client.xread({keys.alerts_stream(): after_id}, count=count, block=block_ms),
    )
    out: list[tuple[str, dict[str, Any]]] = []
    for _stream, entries in reply or []:
        for entry_id, fields in entries:
            alert = alert_entry(entry_id, fields)
            if alert is not None:
                out.append((alert["stream_id"], alert))
            else:  # a foreign entry still moves the cursor past it
                out.append((entry_id.decode() if isinstance(entry_id, bytes) else entry_id, {}))
    return out
