"""Which flow dead-letters the malformed events of each topic: exactly one per topic.

Several flows read the same topics (the inventory, recommendation and fraud
flows all read `pos` and `clickstream`). If each dead-lettered what it could
not decode, the DLQ would hold every malformed event once per reader, with a
different lineage each, and its count would no longer match what was sent.
So one flow owns each topic's dead letters; the others skip the event and
count it (`omnistream_flow_skipped_total`).
"""

from __future__ import annotations

from events.topics import Topic

DEAD_LETTER_OWNER: dict[Topic, str] = {
    Topic.INVENTORY: "inventory",
    Topic.POS: "inventory",
    Topic.CLICKSTREAM: "inventory",
    Topic.CATALOG: "recommend",
    Topic.REC_SERVED: "recommend",
    Topic.LABELS: "fraud",
    Topic.CUSTOMERS: "customers",
    Topic.AVAILABILITY: "customers",
    Topic.MEMBERS: "loyalty",
    Topic.WEATHER: "demand",
}


def owns_dead_letters(flow: str, topic: Topic) -> bool:
    """Whether `flow` sends `topic`'s malformed events to the dead-letter stream.

    >>> owns_dead_letters("inventory", Topic.POS), owns_dead_letters("fraud", Topic.POS)
    (True, False)
    """
    return DEAD_LETTER_OWNER.get(topic) == flow
