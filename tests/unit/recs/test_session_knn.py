"""Session kNN (`operators.recs.session_knn`): the whole session chooses the neighbours, memory stays bounded."""

from __future__ import annotations

import pickle

from operators.recs.session_knn import SessionNeighbours


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
    assert all(len(held) <= 4 for held in knn._sessions_of.values())
    assert all(len(session.items) <= 3 for session in knn._sessions.values())
    # An evicted shopper still named by a SKU's index is skipped, never a crash.
    assert isinstance(knn.top("s:1999", 10), list)


def test_versions_grow_with_event_time_and_survive_a_snapshot() -> None:
    knn = SessionNeighbours()
    knn.learn_one("s:1", "A", 10.0)
    first = knn.next_version("s:1")
    restored: SessionNeighbours = pickle.loads(pickle.dumps(knn))
    restored.learn_one("s:1", "B", 10.0)
    assert first == 10_000
    assert restored.next_version("s:1") == 10_001
    assert restored.top("s:1", 5) == knn.top("s:1", 5) == []
