from __future__ import annotations

import pickle

import orjson
import pytest

from events.rec_served import RecServed, ServedItem, encode_served, served_batch
from operators.recs.experiments import (
    ExperimentTally,
    FeedbackJoin,
    LabelledExample,
    ServedRecord,
    TallyIncrement,
    assign_variant,
    parse_variants,
    served_records,
)
from operators.recs.interactions import Interaction, InteractionKind

VIEW, CART, PURCHASE = InteractionKind.VIEW, InteractionKind.CART, InteractionKind.PURCHASE


def served(request_id: str = "r1", ts: float = 0.0, skus: tuple[str, ...] = ("SKU-1", "SKU-2")) -> ServedRecord:
    return ServedRecord(request_id, "blend", "u:U-1", ts, tuple((sku, {"covisit": 0.5}) for sku in skus))


def event(
    event_id: str, ts: float, sku: str, kind: InteractionKind = VIEW, request_id: str | None = None
) -> Interaction:
    return Interaction(event_id, ts, "u:U-1", "s:S-1", sku, kind, "web", None, None, request_id)


def counters(out: list[TallyIncrement | LabelledExample]) -> list[tuple[str, int]]:
    return [(x.counter, x.n) for x in out if isinstance(x, TallyIncrement)]


@pytest.mark.parametrize(
    "config",
    ["", "a:1;a:1", "a:x", "a:1:cap", "a:1:colour=red", "a:0", {"a": {"weights": {"nonsense": 1}}}],
)
def test_parse_variants_refuses_bad_configs(config: object) -> None:
    with pytest.raises(ValueError):
        parse_variants(config)  # type: ignore[arg-type]


def test_assignment_follows_shares() -> None:
    variants = parse_variants("small:1;large:3")
    counts = {"small": 0, "large": 0}
    for n in range(8_000):
        counts[assign_variant(f"u:U-{n}", variants).name] += 1
    assert 0.2 < counts["small"] / 8_000 < 0.3


def test_a_click_on_a_served_sku_counts_once() -> None:
    join = FeedbackJoin()
    assert counters(join.apply_served(served())) == [("requests", 1), ("impressions", 2)]
    assert counters(join.apply(event("e1", 5.0, "SKU-1", request_id="r1"))) == [("clicks", 1)]
    assert join.apply(event("e1", 5.0, "SKU-1", request_id="r1")) == []  # redelivered
    assert join.apply(event("e2", 6.0, "SKU-9", request_id="r1")) == []  # not served: not a click on it
    assert join.apply_served(served()) == []  # redelivered served record


def test_cart_and_purchase_of_a_served_sku_without_request_id_are_attributed() -> None:
    join = FeedbackJoin(window_s=600.0)
    join.apply_served(served())
    assert counters(join.apply(event("e1", 10.0, "SKU-2", CART))) == [("carts", 1)]
    assert counters(join.apply(event("e2", 20.0, "SKU-2", PURCHASE))) == [("conversions", 1)]
    assert counters(join.apply(event("e3", 700.0, "SKU-1", PURCHASE))) == []  # after the window


def test_click_before_its_served_record_is_held() -> None:
    join = FeedbackJoin()
    assert join.apply(event("e1", 5.0, "SKU-1", request_id="r1")) == []
    assert ("clicks", 1) in counters(join.apply_served(served(ts=4.0)))


def test_closed_answers_become_labelled_examples() -> None:
    join = FeedbackJoin(window_s=100.0)
    join.apply_served(served())
    join.apply(event("e1", 5.0, "SKU-2", request_id="r1"))
    out = join.apply(event("e2", 500.0, "SKU-7"))
    examples = [x for x in out if isinstance(x, LabelledExample)]
    assert [(x.sku, x.clicked, x.features) for x in examples] == [
        ("SKU-1", False, {"covisit": 0.5}),
        ("SKU-2", True, {"covisit": 0.5}),
    ]
    assert len(join) == 0


def test_feedback_join_is_bounded_and_pickles() -> None:
    join = FeedbackJoin(window_s=1e9, max_requests=8)
    for n in range(100):
        join.apply_served(served(f"r{n}", float(n)))
    assert len(join) == 8
    restored = pickle.loads(pickle.dumps(join))
    assert counters(restored.apply(event("e1", 200.0, "SKU-1", request_id="r99"))) == [("clicks", 1)]


def closed(out: list[TallyIncrement | LabelledExample]) -> list[str]:
    """Request ids of the answers closed in `out`, in the order they closed."""
    return list(dict.fromkeys(x.request_id for x in out if isinstance(x, LabelledExample)))


def test_feedback_join_closes_the_oldest_served_answer_first_when_full() -> None:
    join = FeedbackJoin(window_s=1e9, max_requests=3)
    for n in range(3):
        assert closed(join.apply_served(served(f"r{n}", float(n)))) == []
    assert closed(join.apply_served(served("r3", 3.0))) == ["r0"]
    join.apply(event("e1", 4.0, "SKU-1", request_id="r1"))  # a click does not keep an answer open
    assert closed(join.apply_served(served("r4", 5.0))) == ["r1"]
    assert len(join) == 3
    assert closed(join.close_all()) == ["r2", "r3", "r4"]
    assert len(join) == 0


def test_feedback_join_closes_answers_in_serving_order_as_the_window_passes() -> None:
    join = FeedbackJoin(window_s=100.0, max_requests=8)
    for n, ts in enumerate((0.0, 10.0, 20.0, 30.0)):
        join.apply_served(served(f"r{n}", ts))
    assert closed(join.apply(event("e1", 115.0, "SKU-9"))) == ["r0", "r1"]  # served before 15
    assert closed(join.apply(event("e2", 131.0, "SKU-9"))) == ["r2", "r3"]
    assert len(join) == 0


def test_feedback_join_holds_at_most_max_requests_early_clicks_dropping_the_oldest() -> None:
    join = FeedbackJoin(window_s=1e9, max_requests=2)
    for n in range(3):  # clicks on answers whose served records have not arrived
        join.apply(event(f"e{n}", float(n), "SKU-1", request_id=f"r{n}"))
        assert len(join._early_clicks) <= 2
    assert counters(join.apply_served(served("r0", 0.0))) == [("requests", 1), ("impressions", 2)]
    assert ("clicks", 1) in counters(join.apply_served(served("r1", 1.0)))
    assert ("clicks", 1) in counters(join.apply_served(served("r2", 2.0)))


def test_feedback_join_forgets_early_clicks_older_than_the_window() -> None:
    join = FeedbackJoin(window_s=100.0)
    join.apply(event("e1", 0.0, "SKU-1", request_id="r1"))
    join.apply(event("e2", 150.0, "SKU-2", request_id="r2"))
    assert counters(join.apply_served(served("r1", 0.0))) == [("requests", 1), ("impressions", 2)]
    assert ("clicks", 1) in counters(join.apply_served(served("r2", 149.0)))


def test_tally_ignores_unknown_counters() -> None:
    tally = ExperimentTally("blend")
    tally.update(TallyIncrement("blend", "requests", 2, 1.0))
    tally.update(TallyIncrement("blend", "bogus", 5, 2.0))
    doc = tally.get()
    assert doc["requests"] == 2 and "bogus" not in doc and doc["ctr"] == 0.0


def test_served_messages_that_are_not_records_are_rejected_whole() -> None:
    for doc in (None, {"request_id": "r", "variant": "v", "actor": "a", "ts": "x", "items": []},
                {"request_id": "r", "variant": "v", "actor": "a", "ts": 1, "items": [{"no_sku": 1}]}):  # fmt: skip
        raw = orjson.dumps(doc)
        assert served_records(raw) == ([], ("Not a served-recommendation record", raw))


def test_a_batch_keeps_its_good_records_and_sets_the_bad_ones_aside() -> None:
    good = served("r1")
    raw = served_batch([encode_served(RecServed(request_id=good.request_id, variant=good.variant, actor=good.actor,
                                                ts=good.ts, items=[ServedItem(s, f) for s, f in good.items])),
                        b'{"request_id": 3}'])  # fmt: skip
    assert served_records(raw) == ([good], ("1 of 2 elements of the batch are not served-recommendation records",
                                            b'[{"request_id": 3}]'))  # fmt: skip
