"""One shard of each fraud stage: retries dropped, state bounded, labels joined once, alerts once per entity."""

from __future__ import annotations

import pickle
from pathlib import Path

from events.alerts import Entity
from events.models import FraudLabel
from events.topics import Topic
from operators.fraud.alerts import card_ref
from operators.fraud.payments import payment_of
from operators.fraud.pending import DAY_S, PendingPayments
from operators.fraud.records import (
    DeadLetterSeen,
    LabelSeen,
    SaleSeen,
    Scoring,
    ShardVerdicts,
    ShrinkSeen,
    TrafficSeen,
)
from operators.fraud.rules import RuleBook
from operators.fraud.scorer import FraudScorer
from operators.fraud.shards import (
    BEFORE_PAYMENT,
    UNKNOWN_PAYMENT,
    CardShard,
    FraudAlertDesk,
    OperationsDesk,
    ScorerShard,
    ShopperShard,
)
from tests.unit.fraud.builders import T0, event, online, purchase_event

BOOK = RuleBook.from_toml((Path(__file__).resolve().parents[3] / "deploy" / "fraud" / "rules.toml").read_text())


def scoring(ts: float, payment_id: str, *, card_token: str = "tok_a", event_id: str | None = None,
            user_id: str | None = None) -> Scoring:  # fmt: skip
    payment = online(ts, 30.0, payment_id=payment_id, card_token=card_token, user_id=user_id)
    return Scoring(payment, None, event_id or f"ev-{payment_id}", payment.ts)


def scorer_shard() -> ScorerShard:
    return ScorerShard(FraudScorer(BOOK), PendingPayments(horizon_s=120 * DAY_S, maturity_s=30 * DAY_S))


def closing(ts: float) -> list[Scoring]:
    """A payment on another card at `ts`: the first item past a chunk closes it (the models learn it)."""
    return CardShard(100, 1000).learn_many([scoring(ts, f"CLOSE-{ts}", card_token="tok_closing")])


def fraud_label(payment_id: str, ts: float, verdict: str = "fraud", offset: int = 0) -> LabelSeen:
    label = event(Topic.LABELS, "fraud_label", ts, f"lab-{payment_id}", order_id=payment_id, label=verdict,
                  source="chargeback")  # fmt: skip
    assert type(label) is FraudLabel
    return LabelSeen(label, "omni.labels", 0, offset)


def test_a_retried_event_is_dropped_and_its_payment_not_featured_twice() -> None:
    shard = CardShard(max_cards=100, max_ids=1000)
    kept = shard.learn_many([scoring(0.0, "O-1"), scoring(0.0, "O-1"), scoring(5.0, "O-2")])
    assert [item.payment_id for item in kept] == ["O-1", "O-2"]
    assert kept[1].features["card_payments_10m"] == 2.0  # O-1 counted once on the card


def test_card_and_shopper_state_is_bounded_by_max_entities() -> None:
    cards, shoppers = CardShard(max_cards=50, max_ids=1000), ShopperShard(max_shoppers=30)
    items = [scoring(float(i), f"O-{i}", card_token=f"tok_{i}", user_id=f"U-{i}") for i in range(500)]
    shoppers.learn_many(cards.learn_many(items))
    assert len(cards.cards) == 50 and len(shoppers.shoppers) == 30
    assert items[-1].features["user_known"] == 0.0  # a new shopper, featured


def test_a_label_teaches_the_input_its_payment_was_scored_with_once() -> None:
    shard = scorer_shard()
    first = shard.learn_many(CardShard(100, 1000).learn_many([scoring(0.0, "O-1")]), BOOK)
    assert [p.payment_id for p, _ in first.scored] == ["O-1"]
    labels = [fraud_label("O-1", 20 * DAY_S), fraud_label("O-1", 20 * DAY_S + 1)]
    again = shard.learn_many([*labels, *closing(20 * DAY_S + 60.0)], BOOK)  # learned when their chunk closes
    assert (again.fraud_labels, again.unmatched_labels, again.refused) == (1, 0, [])
    assert shard.pending.duplicate_labels == 1 and len(shard.pending) == 1  # the closing payment waits


def test_a_label_for_an_unknown_payment_waits_for_it_then_is_dead_lettered_with_a_reason() -> None:
    shard = scorer_shard()
    unknown = fraud_label("O-404", 5.0, offset=7)
    waiting = shard.learn_many([unknown], BOOK)
    assert (waiting.fraud_labels, waiting.unmatched_labels, waiting.refused) == (0, 0, [])
    early = shard.learn_many(CardShard(100, 1000).learn_many([scoring(DAY_S, "O-1")]), BOOK)
    assert early.refused == []  # a day is the lateness a payment may have behind its label
    late = shard.learn_many(CardShard(100, 1000).learn_many([scoring(DAY_S + 60.0, "O-2")]), BOOK)
    assert (late.unmatched_labels, late.refused) == (1, [(unknown, UNKNOWN_PAYMENT)])


def test_a_label_read_before_its_payment_is_learned_when_its_chunk_closes() -> None:
    shard = scorer_shard()
    shard.learn_many([fraud_label("O-1", 60.0)], BOOK)
    batch = shard.learn_many([*CardShard(100, 1000).learn_many([scoring(30.0, "O-1")]), *closing(200.0)], BOOK)
    assert (batch.fraud_labels, batch.refused) == (1, [])
    assert shard.scorer.model.positives + len(shard.scorer._pending) == 1


def test_a_label_dated_before_its_payment_is_refused() -> None:
    shard = scorer_shard()
    shard.learn_many(CardShard(100, 1000).learn_many([scoring(3600.0, "O-1")]), BOOK)
    label = fraud_label("O-1", 60.0)
    batch = shard.learn_many([label, *closing(3700.0)], BOOK)
    assert (batch.fraud_labels, batch.refused) == (0, [(label, BEFORE_PAYMENT)])


def test_unlabelled_payments_are_presumed_genuine_at_maturity_never_before() -> None:
    shard = scorer_shard()
    cards = CardShard(100, 1000)
    shard.learn_many(cards.learn_many([scoring(0.0, "O-1"), scoring(10.0, "O-2")]), BOOK)
    before = shard.learn_many(cards.learn_many([scoring(30 * DAY_S, "O-3", card_token="tok_b")]), BOOK)
    assert before.presumed_legit == 0 and len(shard.pending) == 3  # their day ends 30 days before midnight
    after = shard.learn_many([*cards.learn_many([scoring(31 * DAY_S, "O-4", card_token="tok_b")]),
                              *closing(31 * DAY_S + 60.0)], BOOK)  # fmt: skip
    assert after.presumed_legit == 2 and len(shard.pending) == 3  # at the start of O-4's chunk, 31 days on


def test_a_fraud_label_after_maturity_corrects_the_presumed_genuine_payment() -> None:
    shard = scorer_shard()
    cards = CardShard(100, 1000)
    shard.learn_many(cards.learn_many([scoring(0.0, "O-1")]), BOOK)
    matured = shard.learn_many(cards.learn_many([scoring(31 * DAY_S, "O-2", card_token="tok_b")]), BOOK)
    assert matured.presumed_legit == 1  # judged at the start of O-2's chunk
    batch = shard.learn_many([fraud_label("O-1", 31 * DAY_S + 65), *closing(31 * DAY_S + 200.0)], BOOK)
    assert (batch.fraud_labels, batch.refused) == (1, [])
    assert shard.totals["fraud"] == 1 and shard.totals["presumed_genuine"] >= 1


def test_a_burst_spread_over_scorer_shards_raises_one_alert_on_the_card() -> None:
    cards = CardShard(100, 1000)
    burst = cards.learn_many([scoring(i * 20.0, f"B-{i}", card_token="tok_stolen") for i in range(10)])
    left, right = scorer_shard(), scorer_shard()
    verdicts = [left.learn_many(burst[0::2], BOOK), right.learn_many(burst[1::2], BOOK)]
    assert all(batch.suspicious for batch in verdicts)
    desk = FraudAlertDesk(BOOK, quiet_s=1800.0, max_open=100)
    alerts = desk.learn_many([ShardVerdicts(b.suspicious, T0 + 200.0) for b in verdicts], BOOK)
    assert {a.entity for a in alerts} == {Entity("card", card_ref("tok_stolen"))}
    opening = alerts[0].alert_id
    assert all(a.alert_id.startswith(opening) for a in alerts) and len(alerts) <= 3  # one incident, escalated
    resolved = desk.learn_many([ShardVerdicts([], T0 + 200.0 + 1801.0)], BOOK)
    assert [a.status for a in resolved] == ["resolved"]


def test_a_silent_store_is_noticed_from_the_other_stores_traffic() -> None:
    desk = OperationsDesk(store_silence_s=300.0, register_silence_s=900.0)
    signals = [SaleSeen("S1", "S1-R1", T0 + i * 10.0) for i in range(40)]
    signals += [SaleSeen("S2", "S2-R1", T0 + i * 10.0 + 5) for i in range(100)]
    alerts = desk.learn_many(signals, tick_s=60.0)
    assert ("store", "S1") in {(a.entity.type, a.entity.id) for a in alerts if a.kind == "anomaly"}


def test_dead_letters_burst_on_their_own_clock_without_moving_the_traffic_clock() -> None:
    desk = OperationsDesk(store_silence_s=300.0, register_silence_s=900.0)
    desk.learn_many([TrafficSeen(T0), ShrinkSeen("STORE-01", 1, T0)], tick_s=60.0)
    desk.learn_many([DeadLetterSeen("pos", T0 + 3600.0 + i * 0.1) for i in range(5)], tick_s=60.0)
    assert desk.clock == T0 and desk.dlq_clock == T0 + 3600.4
    alerts = desk.learn_many([DeadLetterSeen("pos", T0 + 3601.0 + i * 0.1) for i in range(80)], tick_s=60.0)
    assert [(a.entity.type, a.entity.id) for a in alerts] == [("topic", "pos")]


def test_shards_survive_a_snapshot() -> None:
    shard = scorer_shard()
    shard.learn_many(CardShard(100, 1000).learn_many([scoring(float(i), f"O-{i}") for i in range(20)]), BOOK)
    clone = pickle.loads(pickle.dumps(shard))
    assert clone.scorer.model_version == shard.scorer.model_version and len(clone.pending) == len(shard.pending) == 20
    assert clone.learn_many([fraud_label("O-3", 5 * DAY_S), *closing(5 * DAY_S + 60.0)], BOOK).fraud_labels == 1


def test_a_payment_record_is_built_from_the_decoded_event() -> None:
    payment = payment_of(purchase_event(0.0, "O-1"))
    assert payment is not None
    item = Scoring(payment, None, "ev-O-1", payment.ts)
    assert item.payment_id == "O-1" and item.features == {}
