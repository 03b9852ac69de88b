"""The session neighbourhood: earlier clicks matter, memory stays bounded, time is the event's."""

from __future__ import annotations

from operators.recs.session_knn import SessionNeighbourhood


def skus(index: SessionNeighbourhood, session: str, now: float) -> list[str]:
    return [sku for sku, _ in index.score_one(session, now, 10)]


def test_two_sessions_on_the_same_sku_differ_by_their_earlier_clicks() -> None:
    index = SessionNeighbourhood()
    for n in range(5):
        for first, last in (("TENT", "POT"), ("KAYAK", "MAP")):
            for step, sku in enumerate((first, "STOVE", last)):
                index.learn_one(f"{first}-{n}", sku, 100.0 * n + step)
    for session, first in (("camper", "TENT"), ("paddler", "KAYAK")):
        index.learn_one(session, first, 1_000.0)
        index.learn_one(session, "STOVE", 1_001.0)

    camper, paddler = skus(index, "camper", 1_001.0), skus(index, "paddler", 1_001.0)
    assert camper.index("POT") < camper.index("MAP")
    assert paddler.index("MAP") < paddler.index("POT")


def test_memory_is_bounded_in_sessions_skus_per_session_and_sessions_per_sku() -> None:
    index = SessionNeighbourhood(capacity=100, session_items=5, sessions_per_item=10, item_capacity=50)
    for n in range(1_000):
        for step in range(8):
            index.learn_one(f"s{n}", f"SKU-{step}", float(n * 10 + step))
            index.learn_one(f"s{n}", f"ONCE-{n}-{step}", float(n * 10 + step))

    assert len(index) == 100
    assert index.items_of("s999") == ["ONCE-999-5", "SKU-6", "ONCE-999-6", "SKU-7", "ONCE-999-7"]  # the newest
    assert not index.items_of("s0")  # the least recently active left first
    assert max(len(sessions) for sessions in index._sessions_of.values()) == 10
    assert len(index._sessions_of) == 50
    assert "SKU-7" in index._sessions_of  # clicked all along: kept


def test_a_recent_neighbour_session_outweighs_an_old_one() -> None:
    index = SessionNeighbourhood(recency_s=3_600.0)
    for session, last, ts in (("old", "OLD-PICK", 0.0), ("new", "NEW-PICK", 86_000.0)):
        index.learn_one(session, "TENT", ts)
        index.learn_one(session, last, ts + 1)
    index.learn_one("now", "TENT", 86_400.0)

    assert skus(index, "now", 86_400.0)[:2] == ["TENT", "NEW-PICK"]


def test_an_unknown_session_gets_nothing() -> None:
    assert SessionNeighbourhood().score_one("nobody", 0.0, 10) == []
