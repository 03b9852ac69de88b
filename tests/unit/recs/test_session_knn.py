"""Session kNN (`operators.recs.session_knn`): the whole session chooses the neighbours, memory stays bounded."""

from __future__ import annotations

import pickle
import random
from collections import OrderedDict, deque
from typing import Any

from operators.recs.session_knn import SessionNeighbours, _Session


def _learn(knn: SessionNeighbours, sessions: dict[str, list[str]], ts: float = 1.0) -> None:
    for actor, skus in sessions.items():
        for sku in skus:
            knn.learn_one(actor, sku, ts)


def test_earlier_skus_of_the_session_change_its_neighbours() -> None:
    knn = SessionNeighbours()
    # Shoppers who went A -> C went on to X; shoppers who went B -> C went on to Y.
    _learn(knn, {f"s:a{i}": ["A", "C", "X"] for i in range(3)})
    _learn(knn, {f"s:b{i}": ["B", "C", "Y"] for i in range(3)})
    _learn(knn, {"s:one": ["A", "C"], "s:two": ["B", "C"]}, ts=2.0)
    one = [sku for sku, _, _ in knn.top("s:one", 10)]
    two = [sku for sku, _, _ in knn.top("s:two", 10)]
    assert one.index("X") < one.index("Y")
    assert two.index("Y") < two.index("X")


def test_a_neighbours_skus_nearer_the_shared_one_count_more() -> None:
    knn = SessionNeighbours(neighbour_decay=0.5)
    _learn(knn, {"s:n": ["P", "A", "N"]})
    _learn(knn, {"s:me": ["A"]}, ts=2.0)
    scores = {sku: score for sku, score, _ in knn.top("s:me", 10)}
    assert scores["N"] == scores["P"]  # one step either side of A
    _learn(knn, {"s:m": ["F", "G", "A", "H"]})
    scores = {sku: score for sku, score, _ in knn.top("s:me", 10)}
    assert scores["H"] == scores["G"] > scores["F"]  # F is two steps before A


def test_a_shopper_alone_gets_nothing_and_an_unknown_one_too() -> None:
    knn = SessionNeighbours()
    knn.learn_one("s:solo", "A", 1.0)
    assert knn.top("s:solo", 5) == []
    assert knn.top("s:nobody", 5) == []


def test_memory_is_bounded_by_its_capacities() -> None:
    knn = SessionNeighbours(session_items=3, sessions_per_sku=4, sessions_capacity=50, skus_capacity=20)
    for number in range(2_000):
        for step in range(5):
            knn.learn_one(f"s:{number}", f"SKU-{(number * 7 + step) % 300}", float(number))
    assert len(knn) == 50
    assert len(knn._sessions_of) <= 20
    assert knn._holders.shape[0] <= 20 and knn._holders.shape[1] == 4
    assert knn._items.shape[0] <= 50 and knn._items.shape[1] == 3
    assert all(len(session.items) <= 3 for session in knn._sessions.values())
    # An evicted shopper still named by a SKU's index is skipped, never a crash.
    assert isinstance(knn.top("s:1999", 10), list)


def test_a_shopper_who_left_the_index_is_nobodys_neighbour_and_its_row_names_only_the_newcomer() -> None:
    knn = SessionNeighbours(sessions_capacity=2)
    _learn(knn, {"s:old": ["A", "X"]})
    _learn(knn, {"s:me": ["A"]}, ts=2.0)
    assert [sku for sku, _, _ in knn.top("s:me", 5)] == ["A", "X"]
    _learn(knn, {"s:new": ["B", "Y"]}, ts=3.0)  # takes s:old's row; s:old is still in A's holders
    assert knn.top("s:me", 5) == []
    _learn(knn, {"s:me": ["B"]}, ts=4.0)
    assert {sku for sku, _, _ in knn.top("s:me", 5)} == {"B", "Y"}


def test_a_sku_that_left_the_index_is_not_voted_for_and_its_row_names_the_new_sku() -> None:
    knn = SessionNeighbours(skus_capacity=3)
    _learn(knn, {"s:n": ["A", "X"]})
    _learn(knn, {"s:me": ["A"]}, ts=2.0)
    assert [sku for sku, _, _ in knn.top("s:me", 5)] == ["A", "X"]
    _learn(knn, {"s:other": ["Z"]}, ts=3.0)  # A, X, Z: X is the least recently viewed... after A's reload
    _learn(knn, {"s:me": ["A"]}, ts=4.0)  # a reload moves nothing
    _learn(knn, {"s:late": ["W"]}, ts=5.0)  # W takes the row of A (least recently viewed)
    assert "W" not in {sku for sku, _, _ in knn.top("s:n", 5)}


def _reference_scores(
    sessions: dict[str, list[str]],
    holders: dict[str, list[str]],
    actor: str,
    position_decay: float,
    neighbour_decay: float,
) -> dict[str, float]:
    """V-SKNN / STAN as plainly written (the dictionary implementation this module replaced), no truncation."""
    similarity: dict[str, float] = {}
    for step, sku in enumerate(reversed(sessions[actor])):
        for other in holders.get(sku, []):
            if other != actor:
                similarity[other] = similarity.get(other, 0.0) + position_decay**step
    votes: dict[str, float] = {}
    mine = set(sessions[actor])
    for other, shared in similarity.items():
        theirs = sessions[other]
        sim = shared / len(theirs) ** 0.5
        anchor = max((at for at, sku in enumerate(theirs) if sku in mine), default=0)
        for at, sku in enumerate(theirs):
            votes[sku] = votes.get(sku, 0.0) + sim * neighbour_decay ** abs(at - anchor)
    return votes


def test_scores_equal_the_plain_dictionary_algorithm_on_random_sessions() -> None:
    rng = random.Random(3)
    knn = SessionNeighbours(session_items=6, sessions_per_sku=1000, neighbours=1000, position_decay=0.6,
                            neighbour_decay=0.7)  # fmt: skip
    sessions: dict[str, list[str]] = {}
    holders: dict[str, list[str]] = {}
    for click in range(3000):
        actor, sku = f"s:{rng.randrange(200)}", f"SKU-{int(60 * rng.random() ** 2)}"
        knn.learn_one(actor, sku, float(click))
        items = sessions.setdefault(actor, [])
        if items and items[-1] == sku:
            continue
        if sku in items:
            items.remove(sku)
        items.append(sku)
        del items[:-6]
        held = holders.setdefault(sku, [])
        if actor in held:
            held.remove(actor)
        held.append(actor)
    for actor in list(sessions)[:40]:
        expected = _reference_scores(sessions, holders, actor, 0.6, 0.7)
        got = {sku: score for sku, score, _ in knn.top(actor, 1000)}
        assert got.keys() == expected.keys()
        assert all(abs(got[sku] - round(score, 6)) < 1e-6 for sku, score in expected.items())


def test_a_snapshot_of_the_dictionary_release_is_indexed_again() -> None:
    fresh = SessionNeighbours()
    _learn(fresh, {"s:1": ["A", "B"], "s:2": ["A", "C"], "s:me": ["A"]})
    old = SessionNeighbours.__new__(SessionNeighbours)
    sessions: OrderedDict[str, Any] = OrderedDict()
    for actor, items in (("s:1", ["A", "B"]), ("s:2", ["A", "C"]), ("s:me", ["A"])):
        session = _Session.__new__(_Session)
        session.__setstate__((items, 1.0, 7))
        sessions[actor] = session
    index = OrderedDict((sku, deque(actors, maxlen=100)) for sku, actors in
                        (("A", ["s:1", "s:2", "s:me"]), ("B", ["s:1"]), ("C", ["s:2"])))  # fmt: skip
    old.__setstate__({"session_items": 10, "sessions_per_sku": 100, "sessions_capacity": 100_000,
                      "skus_capacity": 100_000, "neighbours": 100, "position_decay": 0.5, "neighbour_decay": 0.8,
                      "_sessions": sessions, "_sessions_of": index, "_decay_powers": [1.0]})  # fmt: skip
    assert old.top("s:me", 5) == fresh.top("s:me", 5)
    assert old.next_version("s:me") == 1000


def test_versions_grow_with_event_time_and_survive_a_snapshot() -> None:
    knn = SessionNeighbours()
    knn.learn_one("s:1", "A", 10.0)
    first = knn.next_version("s:1")
    restored: SessionNeighbours = pickle.loads(pickle.dumps(knn))
    restored.learn_one("s:1", "B", 10.0)
    assert first == 10_000
    assert restored.next_version("s:1") == 10_001
    assert restored.top("s:1", 5) == knn.top("s:1", 5) == []
