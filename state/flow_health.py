"""Flow heartbeats in Redis: each sink worker's last write, event-time lag, dead letters, consumer lag and epochs.

Each worker of a flow's sink records, once a second (`flows.heartbeat`), when it last wrote, the
event-time lag of the median record it wrote then, how many records it has written, its dead
letters by reason (`flows.sinks`), its Kafka consumer lag (messages between the partitions' high
watermarks and its positions, per topic) and when it last closed an epoch (`flows.kafka_source`).
The API's `GET /v1/flows` sums them per flow, beside the dead-letter stream's length and the
reasons of its latest entries. One hash holds them all (`state.keys.flow_health`): one HGETALL
answers the console.
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
    """Per flow: the newest write and epoch, the worst lag of the workers' last writes, counts and consumer lag summed.

    Consumer lag (messages the flow has not read yet) is summed over the workers and per topic;
    it is None while no worker knows it. `per_worker` keeps each worker's own figures.

    >>> [flow] = summarise({
    ...     "inventory/0": {"last_write_at": 10.0, "event_lag_s": 0.2, "records": 5, "dead_letters": {"x": 1},
    ...                     "consumer_lag": 3, "consumer_lag_by_topic": {"omni.pos": 3}, "last_epoch_at": 11.0,
    ...                     "epochs": 4},
    ...     "inventory/1": {"last_write_at": 12.0, "event_lag_s": 0.5, "records": 7, "dead_letters": {},
    ...                     "consumer_lag": 4, "consumer_lag_by_topic": {"omni.pos": 1, "omni.inventory": 3},
    ...                     "last_epoch_at": 10.5, "epochs": 5}})
    >>> flow["workers"], flow["last_write_at"], flow["event_lag_s"], flow["records"], flow["dead_letters"]
    (2, 12.0, 0.5, 12, {'x': 1})
    >>> flow["consumer_lag"], flow["consumer_lag_by_topic"], flow["last_epoch_at"], flow["epochs"]
    (7, {'omni.inventory': 3, 'omni.pos': 4}, 11.0, 5)
    >>> [(w["worker"], w["consumer_lag"]) for w in flow["per_worker"]]
    [(0, 3), (1, 4)]
    """
    flows: dict[str, dict[str, Any]] = {}
    for field, beat in sorted(beats.items(), key=lambda item: _worker_order(item[0])):
        name, _, worker = field.rpartition("/")
        flow = flows.setdefault(
            name,
            {"flow": name, "workers": 0, "last_write_at": None, "event_lag_s": None, "records": 0, "dead_letters": {},
             "consumer_lag": None, "consumer_lag_by_topic": {}, "last_epoch_at": None, "epochs": 0,
             "beat_at": None, "per_worker": []},
        )  # fmt: skip
        flow["workers"] += 1
        flow["last_write_at"] = _newest(flow["last_write_at"], beat.get("last_write_at"))
        flow["last_epoch_at"] = _newest(flow["last_epoch_at"], beat.get("last_epoch_at"))
        flow["beat_at"] = _newest(flow["beat_at"], beat.get("beat_at"))
        flow["epochs"] = max(flow["epochs"], int(beat.get("epochs") or 0))
        lag = beat.get("event_lag_s")
        if lag is not None:
            flow["event_lag_s"] = lag if flow["event_lag_s"] is None else max(flow["event_lag_s"], lag)
        consumer_lag = beat.get("consumer_lag")
        if consumer_lag is not None:
            flow["consumer_lag"] = int(consumer_lag) + (flow["consumer_lag"] or 0)
        by_topic: Counter[str] = Counter(flow["consumer_lag_by_topic"])
        by_topic.update(beat.get("consumer_lag_by_topic") or {})
        flow["consumer_lag_by_topic"] = dict(sorted(by_topic.items()))
        flow["records"] += int(beat.get("records", 0))
        letters: Counter[str] = Counter(flow["dead_letters"])
        letters.update(beat.get("dead_letters", {}))
        flow["dead_letters"] = dict(letters)
        flow["per_worker"].append(
            {"worker": int(worker) if worker.isdigit() else worker, "consumer_lag": consumer_lag,
             "last_write_at": beat.get("last_write_at"), "last_epoch_at": beat.get("last_epoch_at"),
             "epochs": int(beat.get("epochs") or 0), "beat_at": beat.get("beat_at")}
        )  # fmt: skip
    return list(flows.values())


TIME_FIELDS = ("last_write_at", "last_epoch_at", "beat_at")
"""The wall-clock fields of a flow's summary and of each of its workers (epoch seconds; the route shows RFC 3339)."""


def _newest(a: float | None, b: float | None) -> float | None:
    return max(filter(None, (a, b)), default=None)


def _worker_order(field: str) -> tuple[str, int, str]:
    name, _, worker = field.rpartition("/")
    return (name, int(worker) if worker.isdigit() else -1, worker)


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
