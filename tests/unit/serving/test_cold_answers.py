"""Reused cold answers: exactly the blended items back, and nothing the older collections must walk."""

from __future__ import annotations

import gc

from operators.recs.blend import RecItem, RecMaterial
from serving.cold_answers import ColdAnswers


def _material() -> RecMaterial:
    neighbours = {"SKU-9": tuple((f"SKU-{i}", 1.0 / (i + 1), f"cat-{i % 3}") for i in range(20))}
    trending = {"global": (("SKU-1", 3.0, ""),), "loc:S1": (("SKU-2", 2.0, "cat-0"),)}
    return RecMaterial({}, neighbours, trending, None, {f"SKU-{i}" for i in range(20)})


def test_a_stored_answer_comes_back_exactly_while_its_material_is_the_same() -> None:
    answers, material = ColdAnswers(), _material()
    items = [
        RecItem(f"SKU-{i}", 0.1 + i / 3, "co_visitation", {"covisit": i / 7, "trending_global": 1}) for i in range(10)
    ]
    key = ("SKU-9", "S1", None, "blend", 10, False)
    answers.put(key, material, items)
    again = answers.get(key, material)
    assert again == items and all(type(a.score) is float for a in again)
    assert [list(a.features.items()) for a in again] == [list(i.features.items()) for i in items]  # order, ints kept
    refetched = material._replace(neighbours={"SKU-9": tuple(material.neighbours["SKU-9"])[:-1]})
    assert answers.get(key, refetched) is None  # another list object: blended again


def _older_tuples() -> int:
    return sum(1 for o in gc.get_objects(1) + gc.get_objects(2) if type(o) is tuple)


def test_entries_leave_next_to_nothing_tracked_for_the_older_generations() -> None:
    """A tuple of tuples stays tracked into generations 1 and 2 (CPython untracks one level per collection of the
    generation it is in), where their collections walk it: an entry must not be one."""
    answers, material = ColdAnswers(), _material()
    items = [RecItem(f"SKU-{i}", i / 3, "co_visitation", {"covisit": i / 7, "trending_global": 0.5}) for i in range(10)]
    gc.collect()
    before = _older_tuples()
    for n in range(200):
        answers.put((f"SKU-{n}", "S1", None, "blend", 10, False), material, items)
    gc.collect(0)  # one young collection: what survives it is in generation 1
    entries = list(answers._entries.values())
    assert not any(gc.is_tracked(entry) or gc.is_tracked(entry.items) for entry in entries)
    # At most the two flat tuples naming the shared lists, while those lists are tracked (the old layout: ~40).
    assert _older_tuples() - before <= 2 * len(entries)
