"""The unit the simulator produces: one Kafka message, in publish order."""

from __future__ import annotations

from typing import NamedTuple

from events.topics import Topic


class SimRecord(NamedTuple):
    """One message to publish: its topic, key and raw value.

    `malformed` marks a payload that breaks the contract on purpose (it must end
    in the DLQ); `duplicate` marks a byte-identical re-delivery of an earlier
    record (it must change nothing). A NamedTuple because the simulator builds
    tens of thousands per second and tuples are the cheapest record in Python.
    """

    topic: Topic
    key: bytes | None
    value: bytes
    malformed: bool = False
    duplicate: bool = False
