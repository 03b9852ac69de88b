from __future__ import annotations

import pickle

from operators.recs.covisitation import CoVisit, ItemNeighbours, SessionTrail
from operators.recs.interactions import Interaction, InteractionKind

VIEW, CART, PURCHASE = InteractionKind.VIEW, InteractionKind.CART, InteractionKind.PURCHASE


def hit(event_id: str, ts: float, sku: str, kind: InteractionKind = VIEW, session: str = "s:S-1") -> Interaction:
    return Interaction(event_id, ts, "u:U-1", session, sku, kind, "web", None, "toys")


def test_session_trail_ignores_a_redelivered_event() -> None:
    trail = SessionTrail()
    trail.learn_one(hit("e1", 0.0, "SKU-1"))
    first = trail.learn_one(hit("e2", 5.0, "SKU-2"))
    assert len(first) == 2
    assert trail.learn_one(hit("e2", 5.0, "SKU-2")) == []
    assert trail.recent() == ["SKU-2", "SKU-1"]


def test_purchase_pairs_weigh_more_than_view_pairs() -> None:
    views, buys = SessionTrail(), SessionTrail()
    views.learn_one(hit("a1", 0.0, "SKU-1"))
    buys.learn_one(hit("b1", 0.0, "SKU-1", PURCHASE))
    [view_pair, _] = views.learn_one(hit("a2", 1.0, "SKU-2"))
    [buy_pair, _] = buys.learn_one(hit("b2", 1.0, "SKU-2", PURCHASE))
    assert buy_pair.weight > view_pair.weight


def test_items_of_other_sessions_pair_only_within_the_window() -> None:
    trail = SessionTrail(window_s=60.0)
    trail.learn_one(hit("e1", 0.0, "SKU-1", session="s:A"))
    assert trail.learn_one(hit("e2", 120.0, "SKU-2", session="s:B")) == []
    assert [c.other for c in trail.learn_one(hit("e3", 150.0, "SKU-3", session="s:B"))] == ["SKU-2", "SKU-3"]


def test_a_repeated_sku_moves_to_the_front_without_pairing_with_itself() -> None:
    trail = SessionTrail()
    for n, sku in enumerate(["SKU-1", "SKU-2", "SKU-1"]):
        pairs = trail.learn_one(hit(f"e{n}", float(n), sku))
    assert all(c.item != c.other for c in pairs)
    assert trail.recent() == ["SKU-1", "SKU-2"]


def test_trail_is_bounded() -> None:
    trail = SessionTrail(max_items=4)
    for n in range(50):
        pairs = trail.learn_one(hit(f"e{n}", float(n), f"SKU-{n}"))
    assert len(trail.recent()) == 4
    assert len(pairs) == 2 * 4  # both directions with each remembered SKU


def test_neighbours_decay_and_stay_bounded() -> None:
    neighbours = ItemNeighbours(half_life_s=100.0, capacity=10)
    neighbours.learn_one(CoVisit("SKU-0", "OLD", "toys", 10.0, 0.0))
    for n in range(200):
        neighbours.learn_one(CoVisit("SKU-0", f"SKU-{n % 40}", "toys", 1.0, 1_000.0 + n))
    assert len(neighbours) <= 10 + 4
    top = neighbours.top(10, now=1_200.0)
    assert "OLD" not in [sku for sku, _, _ in top]  # ten half-lives old: weaker than any fresh neighbour
    assert [score for _, score, _ in top] == sorted((score for _, score, _ in top), reverse=True)


def test_neighbour_state_pickles_small() -> None:
    neighbours = ItemNeighbours(capacity=100)
    for n in range(1_000):
        neighbours.learn_one(CoVisit("SKU-0", f"SKU-{n % 300:05d}", "toys", 1.0, float(n)))
    assert len(pickle.dumps(neighbours)) < 8_000
    restored = pickle.loads(pickle.dumps(neighbours))
    assert restored.top(5, 1_000.0) == neighbours.top(5, 1_000.0)
