"""Topic names of CONTRACT.md: one place spells them.

Every topic is the configurable prefix (default `omni.`) plus a fixed suffix.
Which event types each input topic carries, and its message key, is the event
registry's (`events.registry`).
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
    SUGGESTIONS = "suggestions"
    CUSTOMERS = "customers"
    AVAILABILITY = "availability"
    TRIGGERS = "triggers"
    MEMBERS = "members"
    LOYALTY = "loyalty"
    ATTRIBUTION = "attribution"
    WEATHER = "weather"

    def named(self, prefix: str) -> str:
        """The topic's full name under `prefix` (`omni.` gives `omni.pos`)."""
        return f"{prefix}{self.value}"

    @classmethod
    def from_name(cls, name: str, prefix: str) -> Topic:
        """The topic a full name stands for; raises `ValueError` for a foreign name."""
        if not name.startswith(prefix):
            raise ValueError(f"topic {name!r} does not start with prefix {prefix!r}")
        return cls(name[len(prefix) :])


INPUT_TOPICS: tuple[Topic, ...]
"""The topics that carry input events, from the event registry (`events.registry.INPUT_TOPICS`)."""
OUTPUT_TOPICS: tuple[Topic, ...] = (
    Topic.ALERTS,
    Topic.DLQ,
    Topic.SUGGESTIONS,
    Topic.AVAILABILITY,
    Topic.TRIGGERS,
    Topic.LOYALTY,
    Topic.ATTRIBUTION,
)
"""`suggestions`: the merchandising flow's transfer and markdown suggestions (docs/merchandising.md).
`availability`: the inventory flow's sellable flips per SKU and location, read by the customers flow.
`triggers`: the customers flow's marketing triggers (docs/customers.md).
`loyalty`: the loyalty flow's ledger entries (docs/loyalty.md).
`attribution`: the attribution flow's per-order credits (docs/attribution.md)."""
FEEDBACK_TOPICS: tuple[Topic, ...] = (Topic.REC_SERVED,)
"""Written by the API (each recommendation answer it served), read by the recommendation flow."""


def __getattr__(name: str) -> tuple[Topic, ...]:
    # `INPUT_TOPICS` is derived from the event registry, which imports this module for `Topic`:
    # it is looked up there on first use (PEP 562) rather than imported at the top, in a cycle.
    if name == "INPUT_TOPICS":
        from events.registry import INPUT_TOPICS

        return INPUT_TOPICS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
