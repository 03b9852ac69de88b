"""The API's collection policy: freshly parsed recommendation lists stop being tracked once enough are pending."""

from __future__ import annotations

import gc

import orjson

from serving.collector import ParsedListCollector
from state.rec_reader import scored_list


def parsed_lists(n: int) -> list[tuple[tuple[str, float, str], ...]]:
    return [scored_list(orjson.dumps([[f"SKU-{i}-{j}", 1.5, "toys"] for j in range(20)])) or () for i in range(n)]


def test_lists_stay_tracked_until_enough_are_pending() -> None:
    collect = ParsedListCollector(every=16)
    gc.disable()  # only the policy may collect here
    try:
        lists = parsed_lists(15)
        collect(len(lists))
        assert all(gc.is_tracked(entry) for entry in lists[0])
    finally:
        gc.enable()


def test_the_collection_stops_tracking_the_parsed_lists() -> None:
    collect = ParsedListCollector(every=16)
    gc.disable()
    try:
        lists = parsed_lists(16)
        assert gc.is_tracked(lists[-1][0])
        collect(len(lists))
        assert not any(gc.is_tracked(entry) for parsed in lists for entry in parsed)
        assert collect.pending == 0
    finally:
        gc.enable()
