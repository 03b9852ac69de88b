"""`events.outputs`: the feed records say where they go, so the flows' sink needs no branch per record type."""

from __future__ import annotations

import pytest

from events.availability import AvailabilityChange
from events.outputs import Destination, destination_of
from events.stock import SkuStock
from events.suggestions import SUGGESTION_TYPES, SUGGESTIONS
from events.topics import OUTPUT_TOPICS, Topic
from events.triggers import Trigger


@pytest.mark.parametrize("kind", SUGGESTION_TYPES, ids=lambda kind: kind.__name__)
def test_every_suggestion_kind_goes_to_the_suggestions_topic_keyed_by_its_id(kind: type) -> None:
    # A kind added to SUGGESTION_TYPES without `DESTINATION = SUGGESTIONS` would stop the sink (it asserts).
    assert destination_of(kind) is SUGGESTIONS
    assert Destination(Topic.SUGGESTIONS, "suggestion_id", mirrored=False) == SUGGESTIONS


def test_the_feed_records_name_the_contracts_topics_and_keys() -> None:
    assert destination_of(Trigger) == Destination(Topic.TRIGGERS, "trigger_id", mirrored=True)
    assert destination_of(AvailabilityChange) == Destination(Topic.AVAILABILITY, "sku")
    assert {d.topic for d in map(destination_of, (Trigger, AvailabilityChange, *SUGGESTION_TYPES)) if d} <= set(
        OUTPUT_TOPICS
    )


def test_a_state_record_names_no_destination() -> None:
    assert destination_of(SkuStock) is None
