"""Topic names of CONTRACT.md: one place spells them.

Every topic is the configurable prefix (default `omni.`) plus a fixed suffix.
"""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    """The contract's topics, by their unprefixed name."""

    CATALOG = "catalog"
    CLICKSTREAM = "clickstream"
    POS = "pos"
    INVENTORY = "inventory"
    LABELS = "labels"
    ALERTS = "alerts"
    DLQ = "dlq"
    REC_SERVED = "rec_served"

    def named(self, prefix: str) -> str:
        """The topic's full name under `prefix` (`omni.` gives `omni.pos`)."""
        return f"{prefix}{self.value}"

    @classmethod
    def from_name(cls, name: str, prefix: str) -> Topic:
        """The topic a full name stands for; raises `ValueError` for a foreign name."""
        if not name.startswith(prefix):
            raise ValueError(f"topic {name!r} does not start with prefix {prefix!r}")
        return cls(name[len(prefix) :])


INPUT_TOPICS: tuple[Topic, ...] = (
    Topic.CATALOG,
    Topic.CLICKSTREAM,
    Topic.POS,
    Topic.INVENTORY,
    Topic.LABELS,
)
OUTPUT_TOPICS: tuple[Topic, ...] = (Topic.ALERTS, Topic.DLQ)
FEEDBACK_TOPICS: tuple[Topic, ...] = (Topic.REC_SERVED,)
"""Written by the API (each recommendation answer it served), read by the recommendation flow."""
