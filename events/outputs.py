"""Where a flow's output record goes: each record type names its topic, its message key and its Redis mirror.

A record type bound for a topic carries a `DESTINATION` class attribute. The flows' sink
(`flows/sinks.py`) reads it, so a new record type for a topic (a new suggestion kind, a new
feed) needs no new branch there: it is encoded as JSON (msgspec), produced to its topic keyed
by its `key_field`, and, when `mirrored`, added once to the Redis stream of the same name
(`state.keys.topic_stream`, keyed by the same field, which must name the record: the stream's
de-duplication key).

Records that are state rather than a feed (stock, documents, order lines) have no
destination: the sink writes them through their version-fenced writers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from events.topics import Topic


@dataclass(frozen=True, slots=True)
class Destination:
    """An output topic, the field whose value keys each record's message, and whether Redis mirrors it.

    >>> Destination(Topic.TRIGGERS, "trigger_id", mirrored=True).key_of(type("T", (), {"trigger_id": "t-1"})())
    't-1'
    """

    topic: Topic
    key_field: str
    mirrored: bool = False  # also added once to the Redis stream of the topic's name (the API's SSE feeds)

    def key_of(self, record: Any) -> str:
        """The record's message key (and, when mirrored, its id in the stream)."""
        return str(getattr(record, self.key_field))


def destination_of(record_type: type) -> Destination | None:
    """The destination a record type declares, or None (a state record, or not an output at all).

    >>> class Feed:
    ...     DESTINATION = Destination(Topic.AVAILABILITY, "sku")
    >>> destination_of(Feed).topic, destination_of(int)
    (<Topic.AVAILABILITY: 'availability'>, None)
    """
    found = getattr(record_type, "DESTINATION", None)
    return found if isinstance(found, Destination) else None
