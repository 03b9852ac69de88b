"""Flow heartbeats in Redis: each sink worker's last write, event-time lag and dead letters; read by the API.

Each worker of a flow's sink records, at most once a second, when it last wrote, the event-time
lag of the median record it wrote then, how many records it has written and its dead letters by
reason (`flows.sinks`). The API's `GET /v1/flows` sums them per flow, beside the dead-letter
stream's length and the reasons of its latest entries. One hash holds them all
(`state.keys.flow_health`): one HGETALL answers the console.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis

from events.reasons import reason_of
from state import keys
from state.stream_writer import RECORD_FIELD

_RECORD = RECORD_FIELD.encode()


def write_heartbeat(client: redis.Redis, flow: str, worker: int, doc: dict[str, Any]) -> None:
    """Record one sink worker's heartbeat (overwrites its previous one)."""
    client.hset(keys.flow_health(), f"{flow}/{worker}", orjson.dumps(doc))


def summarise(beats: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per flow: the newest write, the worst lag of the workers' last writes, records and dead letters summed.

    >>> [flow] = summarise({
    ...     "inventory/0": {"last_write_at": 10.0, "event_lag_s": 0.2, "records": 5, "dead_letters": {"x": 1}},
    ...     "inventory/1": {"last_write_at": 12.0, "event_lag_s": 0.5, "records": 7, "dead_letters": {}}})
    >>> flow["workers"], flow["last_write_at"], flow["event_lag_s"], flow["records"], flow["dead_letters"]
    (2, 12.0, 0.5, 12, {'x': 1})
    """
    flows: dict[str, dict[str, Any]] = {}
    for field, beat in sorted(beats.items()):
        name = field.rpartition("/")[0]
        flow = flows.setdefault(
            name,
            {"flow": name, "workers": 0, "last_write_at": None, "event_lag_s": None, "records": 0, "dead_letters": {}},
        )
        flow["workers"] += 1
        flow["last_write_at"] = max(filter(None, (flow["last_write_at"], beat.get("last_write_at"))), default=None)
        lag = beat.get("event_lag_s")
        if lag is not None:
            flow["event_lag_s"] = lag if flow["event_lag_s"] is None else max(flow["event_lag_s"], lag)
        flow["records"] += int(beat.get("records", 0))
        letters: Counter[str] = Counter(flow["dead_letters"])
        letters.update(beat.get("dead_letters", {}))
        flow["dead_letters"] = dict(letters)
    return list(flows.values())


class FlowHealthReader:
    """The API's side: heartbeats per flow and the dead-letter stream's figures."""

    def __init__(self, client: aioredis.Redis, sample: int = 200) -> None:
        self.client = client
        self.sample = sample

    async def read(self) -> dict[str, Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.flow_health())
            pipe.xlen(keys.dlq_stream())
            pipe.xrevrange(keys.dlq_stream(), count=self.sample)
            raw_beats, total, latest = await pipe.execute()
        beats = {field.decode(): orjson.loads(value) for field, value in raw_beats.items()}
        reasons: Counter[str] = Counter()
        for _, fields in latest:
            body = fields.get(_RECORD)
            if body:
                letter = orjson.loads(body)  # `events.dead_letter.DeadLetter`: its reason is derived from `error`
                reasons[str(letter.get("reason") or reason_of(str(letter.get("error", ""))))] += 1
        return {
            "flows": summarise(beats),
            "dead_letters": {"total": int(total), "sampled": len(latest), "by_reason": dict(reasons)},
        }
