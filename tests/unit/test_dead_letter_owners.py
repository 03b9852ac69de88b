"""Every topic a flow reads has exactly one flow that dead-letters its malformed events."""

from __future__ import annotations

from events.topics import FEEDBACK_TOPICS, INPUT_TOPICS
from flows.dead_letters import DEAD_LETTER_OWNER, owns_dead_letters
from flows.registry import FLOWS


def test_every_topic_read_by_a_flow_has_one_owner_among_the_flows() -> None:
    for topic in (*INPUT_TOPICS, *FEEDBACK_TOPICS):
        owners = [flow for flow in FLOWS if owns_dead_letters(flow, topic)]
        assert len(owners) == 1, topic


def test_the_inventory_flow_owns_the_topics_it_reads() -> None:
    assert "inventory" in FLOWS
    assert {t for t, flow in DEAD_LETTER_OWNER.items() if flow == "inventory"} >= {
        t for t in INPUT_TOPICS if t.value in ("inventory", "pos", "clickstream")
    }
