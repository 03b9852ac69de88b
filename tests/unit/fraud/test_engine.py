"""The whole engine on event streams: one alert per burst, duplicates ignored, bounded state."""

from __future__ import annotations

import pickle
from pathlib import Path

from events.topics import Topic
from operators.fraud.engine import FraudEngine, _RecentIds
from operators.fraud.rules import RuleBook
from tests.unit.fraud.builders import event, purchase_event, sale_event

BOOK = RuleBook.from_toml((Path(__file__).resolve().parents[3] / "deploy" / "fraud" / "rules.toml").read_text())


def test_card_testing_burst_is_scored_up_and_alerted_once() -> None:
    engine = FraudEngine(BOOK)
    burst = [
        purchase_event(i * 40.0, f"O-{i}", card_token="tok_stolen", ip_country="NG", billing_country="US")
        for i in range(6)
    ]
    out = engine.process_many(burst)
    scores = [verdict.score for _, verdict in out.scored]
    assert scores[-1] > scores[0] and scores[-1] >= BOOK.block
    fraud_alerts = [a for a in out.alerts if a.kind == "fraud"]
    assert len({a.entity for a in fraud_alerts}) == 1
    assert len([a for a in fraud_alerts if a.severity.value == "attention"]) == 1


def test_redelivered_payment_is_scored_once() -> None:
    engine = FraudEngine(BOOK)
    first = purchase_event(0.0, "O-1")
    out = engine.process_many([first, first, purchase_event(5.0, "O-1", event_id="ev-O-1")])
    assert [p.payment_id for p, _ in out.scored] == ["O-1"]


def test_fraud_label_teaches_the_scored_input_once() -> None:
    engine = FraudEngine(BOOK)
    engine.process_many([purchase_event(0.0, "O-1")])
    label = event(Topic.LABELS, "fraud_label", 300.0, "lab-1", order_id="O-1", label="fraud", source="chargeback")
    engine.process_many([label, label])
    assert engine.labels_learned == 1
    unknown = event(Topic.LABELS, "fraud_label", 301.0, "lab-2", order_id="O-404", label="fraud", source="chargeback")
    engine.process_many([unknown])
    assert engine.labels_learned == 1


def test_entity_state_is_bounded_by_max_entities() -> None:
    engine = FraudEngine(BOOK, max_entities=50)
    engine.process_many([sale_event(i, f"T-{i}", card_token=f"tok_{i}") for i in range(500)])
    assert len(engine._cards) == 50


def test_silent_store_alert_comes_from_other_stores_traffic() -> None:
    engine = FraudEngine(BOOK, tick_s=0.0)
    sales = [sale_event(i * 10.0, f"A-{i}", store_id="S1", register_id="S1-R1") for i in range(40)]
    sales += [sale_event(i * 10.0 + 5, f"B-{i}", store_id="S2", register_id="S2-R1") for i in range(100)]
    alerts = engine.process_many(sales).alerts
    assert ("store", "S1") in {(a.entity.type, a.entity.id) for a in alerts if a.kind == "anomaly"}


def test_dead_letters_feed_the_burst_watch() -> None:
    engine = FraudEngine(BOOK)
    engine.process_many([sale_event(0.0, "T-0")])
    out = engine.process_many([sale_event(1.0, "T-1")], dead_letter_topics=["pos"] * 60)
    assert [(a.entity.type, a.entity.id) for a in out.alerts] == [("topic", "pos")]


def test_engine_state_pickles() -> None:
    engine = FraudEngine(BOOK)
    engine.process_many([purchase_event(i, f"O-{i}") for i in range(20)])
    clone = pickle.loads(pickle.dumps(engine))
    assert clone.scorer.model_version == engine.scorer.model_version


def test_anything_but_a_decoded_event_is_skipped_not_fatal() -> None:
    from events.dead_letter import DeadLetter

    engine = FraudEngine(BOOK)
    junk = [DeadLetter.of("pos", 0, 1, "Empty payload", b""), None, "text"]
    out = engine.process_many([*junk, sale_event(0.0, "T-1")])  # type: ignore[list-item]
    assert [p.payment_id for p, _ in out.scored] == ["T-1"]


def test_remembered_event_ids_forget_the_oldest_first_by_count_and_by_event_time() -> None:
    ids = _RecentIds(window_s=100.0, max_ids=3)
    assert [ids.add(f"e{i}", float(i)) for i in range(4)] == [True] * 4
    assert len(ids) == 3
    assert [ids.add(e, 3.0) for e in ("e1", "e2", "e3", "e0")] == [False, False, False, True]  # e0 was the oldest
    assert ids.add("e9", 150.0) and len(ids) == 1  # the newest ts ages every other id out
    assert ids.add("e3", 150.0) and not ids.add("e9", 150.0)
