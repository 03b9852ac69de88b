"""Adds alerts and dead letters to their Redis streams, each record at most once.

Kafka sinks are at-least-once (a replay after recovery re-sends records), so
every record carries an id derived from its cause (`alert_id`, `dlq_id`), and a
script adds it to the stream only if its marker key is new. The marker lives
as long as the stream is expected to hold the record.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import redis

from events.alerts import Alert
from events.dead_letter import DeadLetter
from state import keys
from state.pipeline_scripts import LuaScript, run_counting

RECORD_FIELD = "json"

_ADD_ONCE = """
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', ARGV[3], ARGV[4])
  return 1
end
return 0
"""


class StreamWriter:
    """Idempotent, pipelined XADD of JSON records to one stream.

    Parameters
    ----------
    stream_key
        The stream (`keys.alerts_stream()` or `keys.dlq_stream()`).
    generation
        The flow-state lineage; record ids (source offsets, versions) repeat across lineages.
    max_len
        Approximate cap of the stream; older entries are trimmed.
    marker_ttl_s
        How long a record's id is remembered for de-duplication.
    """

    def __init__(
        self,
        client: redis.Redis,
        stream_key: str,
        *,
        generation: str = "",
        max_len: int = 100_000,
        marker_ttl_s: int = 7 * 86_400,
    ) -> None:
        self.stream_key = stream_key
        self.generation = generation
        self.max_len = max_len
        self.marker_ttl_s = marker_ttl_s
        self._client = client
        self._add_once = LuaScript(_ADD_ONCE)
        self.scripts = (self._add_once,)  # for `run_pipeline`

    def add_batch(self, records: Iterable[tuple[str, bytes]]) -> int:
        """Add `(record_id, json_bytes)` pairs not added before; returns how many were new."""
        records = list(records)
        return run_counting(self._client, lambda pipe: self.queue(pipe, records), self.scripts)

    def queue(self, pipe: redis.client.Pipeline, records: Iterable[tuple[str, bytes]]) -> int:
        """Add the idempotent XADDs of `records` to `pipe`; returns how many were queued."""
        count = 0
        for record_id, body in records:
            self._add_once.queue(
                pipe,
                [self.stream_key, keys.stream_marker(self.stream_key, self.generation, record_id)],
                [self.marker_ttl_s, self.max_len, RECORD_FIELD, body],
            )
            count += 1
        return count


def alert_records(alerts: Iterable[Alert]) -> list[tuple[str, bytes]]:
    """`(alert_id, json)` pairs for `StreamWriter.add_batch`."""
    return [(a.alert_id, orjson.dumps(a)) for a in alerts]


def dead_letter_records(letters: Iterable[DeadLetter]) -> list[tuple[str, bytes]]:
    """`(dlq_id, json)` pairs for `StreamWriter.add_batch`."""
    return [(d.dlq_id, orjson.dumps(d)) for d in letters]
