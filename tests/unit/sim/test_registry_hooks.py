"""The simulator publishes every registered event type, from the hook its registry entry names."""

from __future__ import annotations

import importlib
from collections import Counter

import pytest

from events.registry import REGISTRY, EventType
from tests.unit.sim.conftest import Stream


def resolve(hook: str) -> object:
    module_name, _, qualname = hook.partition(":")
    found: object = importlib.import_module(module_name)
    for name in qualname.split("."):
        found = getattr(found, name)
    return found


@pytest.mark.parametrize("entry", REGISTRY.types, ids=lambda e: e.name)
def test_the_sim_hook_of_every_entry_is_a_callable_of_sim(entry: EventType) -> None:
    assert callable(resolve(entry.sim_hook))


def test_the_simulated_stream_carries_every_registered_type_on_its_topic(stream: Stream) -> None:
    seen = Counter((r.topic, e["type"]) for r, e in stream.valid if not r.duplicate)

    assert {name for _, name in seen} == set(REGISTRY.by_name)
    assert all(REGISTRY.by_name[name].topic is topic for topic, name in seen)
