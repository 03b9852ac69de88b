"""`events.topics`: one place spells the contract's topic names."""

from __future__ import annotations

import pytest

from events.topics import INPUT_TOPICS, OUTPUT_TOPICS, Topic


def test_topic_named_adds_the_prefix() -> None:
    assert Topic.POS.named("omni.") == "omni.pos"
    assert Topic.DLQ.named("staging.omni.") == "staging.omni.dlq"


@pytest.mark.parametrize("topic", list(Topic))
def test_topic_from_name_inverts_named(topic: Topic) -> None:
    assert Topic.from_name(topic.named("t1."), "t1.") is topic


def test_topic_from_name_refuses_a_foreign_prefix() -> None:
    with pytest.raises(ValueError, match="does not start with prefix"):
        Topic.from_name("other.pos", "omni.")


def test_topic_from_name_refuses_an_unknown_suffix() -> None:
    with pytest.raises(ValueError):
        Topic.from_name("omni.payments", "omni.")


def test_topics_are_the_contracts_inputs_and_outputs() -> None:
    assert [t.named("omni.") for t in INPUT_TOPICS] == [
        "omni.catalog",
        "omni.clickstream",
        "omni.pos",
        "omni.inventory",
        "omni.labels",
        "omni.customers",
        "omni.members",
        "omni.weather",
    ]
    assert [t.named("omni.") for t in OUTPUT_TOPICS] == [
        "omni.alerts",
        "omni.dlq",
        "omni.suggestions",
        "omni.availability",
        "omni.triggers",
        "omni.loyalty",
        "omni.attribution",
    ]
