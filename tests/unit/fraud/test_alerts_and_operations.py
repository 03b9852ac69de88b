"""Alerts open once per entity, escalate, resolve; operational watchers notice silence, shrink and dead letters."""

from __future__ import annotations

import pickle
from pathlib import Path

from events.alerts import Entity, Severity
from operators.fraud.alerts import AlertBook, FraudAlerts, card_ref, payment_entity
from operators.fraud.operations import DeadLetterRate, SalesPulse, ShrinkWatch
from operators.fraud.rules import RuleBook
from operators.fraud.scorer import FraudScore
from tests.unit.fraud.builders import T0, action, online, till

BOOK = RuleBook.from_toml((Path(__file__).resolve().parents[3] / "deploy" / "fraud" / "rules.toml").read_text())


def verdict(score: float) -> FraudScore:
    return FraudScore(score, BOOK.decision(score), ["many payments on one card within 10 minutes"], "v", score, 0.0, ())


def test_card_testing_burst_raises_one_alert_not_one_per_payment() -> None:
    alerts = FraudAlerts(BOOK)
    raised = []
    for i in range(12):
        pay = online(i * 30.0, 3.0, payment_id=f"O{i}", user_id=None, card_token="tok_victim")
        raised += alerts.learn_one(pay, verdict(0.5))
    assert len(raised) == 1
    assert raised[0].entity == Entity("card", card_ref("tok_victim"))
    assert "tok_victim" not in raised[0].alert_id and "tok_victim" not in str(raised[0].reasons)


def test_alert_escalates_once_per_severity_and_resolves_once_after_quiet() -> None:
    alerts = FraudAlerts(BOOK, quiet_s=600.0)
    pay = online(0.0, user_id=None)
    opened = alerts.learn_one(pay, verdict(0.2))
    escalated = alerts.learn_one(pay._replace(ts=T0 + 60.0), verdict(0.9))
    again = alerts.learn_one(pay._replace(ts=T0 + 90.0), verdict(0.9))
    assert [a.severity for a in opened + escalated] == [Severity.WARNING, Severity.ATTENTION] and again == []
    assert escalated[0].alert_id == opened[0].alert_id + ":attention"
    assert alerts.sweep(T0 + 600.0) == []
    resolved = alerts.sweep(T0 + 700.0)
    assert [a.alert_id for a in resolved] == [opened[0].alert_id + ":resolved"] and resolved[0].reasons[0] == "resolved"
    assert alerts.sweep(T0 + 800.0) == []
    reopened = alerts.learn_one(pay._replace(ts=T0 + 900.0), verdict(0.2))
    assert len(reopened) == 1 and reopened[0].alert_id != opened[0].alert_id


def test_alert_ids_are_derived_from_entity_kind_and_event_time() -> None:
    first = FraudAlerts(BOOK).learn_one(online(5.0), verdict(0.9))
    second = FraudAlerts(BOOK).learn_one(online(5.0), verdict(0.9))
    assert [a.alert_id for a in first] == [a.alert_id for a in second]


def test_allowed_payments_raise_nothing() -> None:
    assert FraudAlerts(BOOK).learn_one(online(0.0), verdict(0.01)) == []


def test_alert_entity_is_the_account_online_the_card_at_the_till_else_the_payment() -> None:
    assert payment_entity(online(user_id="U-9")) == Entity("user", "U-9")
    assert payment_entity(till(customer_id="U-9")).type == "card"
    assert payment_entity(till(card_token=None)) == Entity("payment", "T-1")


def test_refund_abuse_raises_a_cashier_alert_through_till_rules() -> None:
    alerts = FraudAlerts(BOOK)
    features = {"cashier_noreceipt_30m": 6.0, "cashier_noreceipt_excess": 5.0, "cashier_voids_30m": 0.0}
    raised = alerts.learn_till_one(action("return", 0.0, cashier_id="C-7"), features)
    assert [(a.entity.type, a.entity.id) for a in raised] == [("cashier", "S1/C-7")]
    assert alerts.learn_till_one(action("return", 0.0, cashier_id="C-8"), {"cashier_noreceipt_30m": 1.0}) == []


def test_alert_book_is_bounded_and_resolves_what_it_drops() -> None:
    book = AlertBook("fraud", max_open=3)
    emitted = []
    for i in range(5):
        emitted += book.observe(Entity("card", f"c{i}"), float(i), Severity.WARNING, ["r"])
    assert len(book) == 3
    assert sum(a.reasons[0] == "resolved" for a in emitted) == 2


def test_alert_book_over_its_bound_resolves_the_earliest_opened_first() -> None:
    book = AlertBook("fraud", max_open=3)
    cards = [Entity("card", f"c{i}") for i in range(6)]
    for i, card in enumerate(cards[:3]):
        book.observe(card, float(i), Severity.WARNING, ["r"])
    book.observe(cards[0], 3.0, Severity.ATTENTION, ["r"])  # escalated and seen again: still the earliest opened
    book.clear(cards[1], 4.0)
    assert book.observe(cards[3], 5.0, Severity.WARNING, ["r"])[0].reasons == ["r"]  # back at the bound: no eviction
    evicted = [alert for i in (4, 5) for alert in book.observe(cards[i], 2.0 + i, Severity.WARNING, ["r"])]
    resolved = [(a.alert_id, a.severity) for a in evicted if a.reasons[0] == "resolved"]
    assert resolved == [
        ("fraud:card:c0:0:resolved", Severity.ATTENTION),
        ("fraud:card:c2:2000:resolved", Severity.WARNING),
    ]
    assert [card.id for card in cards if book.is_open(card)] == ["c3", "c4", "c5"]


def test_alert_book_snapshot_from_before_the_ordered_dict_loads_and_evicts_in_order() -> None:
    book = AlertBook("fraud", max_open=2)
    book.observe(Entity("card", "c0"), 0.0, Severity.WARNING, ["r"])
    book.observe(Entity("card", "c1"), 1.0, Severity.WARNING, ["r"])
    book.__dict__["_open"] = dict(book.__dict__["_open"])  # the state as earlier releases pickled it
    restored = pickle.loads(pickle.dumps(book, protocol=pickle.HIGHEST_PROTOCOL))
    evicted = restored.observe(Entity("card", "c2"), 2.0, Severity.WARNING, ["r"])
    assert [a.alert_id for a in evicted] == ["fraud:card:c2:2000", "fraud:card:c0:0:resolved"]
    assert len(restored) == 2 and restored.is_open(Entity("card", "c1"))


def test_a_late_payment_keeps_its_incident_open_for_the_quiet_period_from_when_it_was_heard() -> None:
    """A burst read after another worker's partition moved the clock on: one incident, not one per payment."""
    book = AlertBook("fraud", quiet_s=600)
    assert book.sweep(now=10_000.0) == []  # other traffic, hours after the burst
    card = Entity("card", "c-late")
    opened = book.observe(card, 100.0, Severity.WARNING, ["r"])
    assert book.sweep(now=10_001.0) == []  # not resolved at once by the clock it arrived behind
    assert book.observe(card, 101.0, Severity.WARNING, ["r"]) == []  # the same incident
    assert book.sweep(now=10_601.0) == []  # 600 s after the sweep the second payment was heard at
    resolved = book.sweep(now=10_602.0)
    assert [a.alert_id for a in resolved] == [f"{opened[0].alert_id}:resolved"]


def test_a_late_payment_of_a_resolved_burst_joins_it_and_a_worse_or_later_one_opens_another() -> None:
    """Scorer input fans in from several shards: a burst's early payment may come after the clock resolved it."""
    book = AlertBook("fraud", quiet_s=600)
    card = Entity("card", "c-burst")
    opened = book.observe(card, 700.0, Severity.ATTENTION, ["r"])  # the burst's last payment, read first
    assert [a.reasons[0] for a in book.sweep(now=43_200.0)] == ["resolved"]  # another shard, 12 hours on
    assert book.observe(card, 640.0, Severity.WARNING, ["r"]) == []  # read late: part of that incident
    assert book.observe(card, 110.0, Severity.ATTENTION, ["r"]) == []  # up to quiet_s before it opened
    assert book.late_joined == 2 and not book.is_open(card)
    worse = book.observe(card, 650.0, Severity.EMERGENCY, ["r"])
    assert worse[0].alert_id != opened[0].alert_id and worse[0].severity is Severity.EMERGENCY
    other = Entity("card", "c-next")
    book.observe(other, 43_300.0, Severity.WARNING, ["r"])
    book.sweep(now=44_000.0)
    assert book.observe(other, 44_500.0, Severity.WARNING, ["r"])[0].alert_id.endswith(":44500000")  # after quiet


def test_resolved_incidents_are_forgotten_once_no_late_event_can_belong_to_them() -> None:
    book = AlertBook("fraud", quiet_s=600, max_open=2)
    for i in range(4):
        book.observe(Entity("card", f"c{i}"), 100.0 * i, Severity.WARNING, ["r"])
        book.clear(Entity("card", f"c{i}"), 100.0 * i)
    assert len(book._closed) == 2  # bounded like the open alerts
    book.sweep(now=300.0 + 1_201.0)
    assert len(book._closed) == 0
    assert book.observe(Entity("card", "c3"), 300.0, Severity.WARNING, ["r"]) != []


def test_alert_book_snapshot_from_before_its_clock_loads() -> None:
    book = AlertBook("fraud", quiet_s=600)
    book.observe(Entity("card", "c0"), 0.0, Severity.WARNING, ["r"])
    for name in ("clock", "_closed", "late_joined"):
        del book.__dict__[name]  # the state as earlier releases pickled it
    restored = pickle.loads(pickle.dumps(book, protocol=pickle.HIGHEST_PROTOCOL))
    assert [a.reasons[0] for a in restored.sweep(now=601.0)] == ["resolved"]


def test_silent_store_is_noticed_by_the_clock_of_other_traffic_and_resolves_on_its_next_sale() -> None:
    pulse = SalesPulse(min_sales=10, store_min_silence_s=300.0, register_min_silence_s=10_000.0)
    for i in range(60):
        pulse.learn_one("S1", "S1-R1", T0 + i * 10.0)
        pulse.learn_one("S2", "S2-R1", T0 + i * 10.0)
    assert pulse.tick(T0 + 600.0) == []
    for i in range(60, 120):  # S1 goes dark; S2 keeps selling and drives the clock
        pulse.learn_one("S2", "S2-R1", T0 + i * 10.0)
    alerts = pulse.tick(T0 + 1200.0)
    assert [(a.entity.type, a.entity.id, a.severity) for a in alerts] == [("store", "S1", Severity.ATTENTION)]
    assert pulse.tick(T0 + 1300.0) == []  # one open alert, not one per tick
    resolved = pulse.learn_one("S1", "S1-R1", T0 + 1310.0)
    assert [(a.entity.id, a.reasons[0]) for a in resolved] == [("S1", "resolved")]
    assert pulse.tick(T0 + 1320.0) == []


def test_a_store_resuming_with_a_sale_older_than_the_clock_still_resolves_at_once() -> None:
    """Other traffic may have moved the clock (and ticked) past the resumed store's first sale."""
    pulse = SalesPulse(min_sales=10, store_min_silence_s=300.0, register_min_silence_s=10_000.0)
    for i in range(60):
        pulse.learn_one("S1", "S1-R1", T0 + i * 10.0)
        pulse.learn_one("S2", "S2-R1", T0 + i * 10.0)
    for i in range(60, 120):
        pulse.learn_one("S2", "S2-R1", T0 + i * 10.0)
    assert [a.entity.id for a in pulse.tick(T0 + 1200.0)] == ["S1"]
    pulse.learn_one("S2", "S2-R1", T0 + 1210.0)
    assert pulse.tick(T0 + 1210.0) == []
    resolved = pulse.learn_one("S1", "S1-R1", T0 + 1205.0)  # published before S2's, delivered after the tick
    assert [(a.entity.id, a.status.value) for a in resolved] == [("S1", "resolved")]


def test_a_pause_of_the_whole_stream_raises_nothing() -> None:
    pulse = SalesPulse(min_sales=10)
    for i in range(60):
        pulse.learn_one("S1", "S1-R1", T0 + i * 10.0)
    assert pulse.tick(T0 + 600.0) == []  # the clock is event time: no traffic, no time passing


def test_quiet_store_gets_more_slack_than_a_busy_one() -> None:
    pulse = SalesPulse(min_sales=10, store_min_silence_s=60.0, register_min_silence_s=10_000.0)
    for i in range(30):
        pulse.learn_one("BUSY", "B-R1", T0 + i * 5.0)
        pulse.learn_one("QUIET", "Q-R1", T0 + i * 120.0)
    alerts = pulse.tick(T0 + 29 * 120.0 + 400.0)  # QUIET's usual gap is 120 s: 400 s is not yet silence
    assert [a.entity.id for a in alerts] == ["BUSY"]


def test_shrink_spike_at_one_location_alerts_once_and_resolves_after_a_quiet_window() -> None:
    watch = ShrinkWatch(window_s=1800.0, min_excess=8.0)
    alerts = []
    for i in range(40):
        for location in ("S1", "S2", "S3"):
            alerts += watch.learn_one(location, 1, T0 + i * 90.0)  # everyone's normal trickle
    assert alerts == []
    for i in range(25):
        alerts += watch.learn_one("S2", 1, T0 + 3600.0 + i * 20.0)
    assert [(a.entity.id, a.kind) for a in alerts] == [("S2", "anomaly")]
    assert [a.reasons[0] for a in watch.tick(T0 + 3600.0 + 500.0 + 1900.0)] == ["resolved"]


def test_dead_letter_burst_from_one_topic_alerts_and_the_trickle_does_not() -> None:
    rate = DeadLetterRate(min_burst=30)
    alerts = []
    for minute in range(30):
        for k in range(3):
            alerts += rate.learn_one("pos", T0 + minute * 60.0 + k)
    assert alerts == []
    for k in range(200):
        alerts += rate.learn_one("pos", T0 + 1800.0 + k * 0.2)
    assert [(a.entity.type, a.entity.id) for a in alerts] == [("topic", "pos")]
    resolved = rate.tick(T0 + 2000.0)
    assert [a.reasons[0] for a in resolved] == ["resolved"]


def test_watchers_pickle_for_recovery_snapshots() -> None:
    pulse, watch, rate = SalesPulse(), ShrinkWatch(), DeadLetterRate()
    pulse.learn_one("S1", "S1-R1", T0)
    watch.learn_one("S1", 1, T0)
    rate.learn_one("pos", T0)
    for state in (pulse, watch, rate, FraudAlerts(BOOK)):
        assert type(pickle.loads(pickle.dumps(state))) is type(state)


def test_registers_of_a_dark_store_raise_no_alerts_of_their_own() -> None:
    pulse = SalesPulse(min_sales=10, store_min_silence_s=300.0, register_min_silence_s=300.0)
    for i in range(60):
        pulse.learn_one("S1", f"S1-R{i % 3}", T0 + i * 10.0)
        pulse.learn_one("S2", f"S2-R{i % 3}", T0 + i * 10.0)
    for i in range(60, 200):
        pulse.learn_one("S2", f"S2-R{i % 3}", T0 + i * 10.0)
    alerts = pulse.tick(T0 + 2000.0)
    assert [(a.entity.type, a.entity.id) for a in alerts] == [("store", "S1")]


def test_a_store_selling_a_few_times_a_day_is_not_silent_after_hours_or_overnight() -> None:
    pulse = SalesPulse(min_sales=10)
    alerts = []
    for day in range(20):  # three sales a day, around noon; a busy store drives the clock all day
        for hour in (11.0, 12.5, 14.0):
            alerts += pulse.learn_one("SLOW", "SLOW-R1", T0 + day * 86_400.0 + hour * 3600.0)
        for minute in range(0, 24 * 60, 2):
            alerts += pulse.learn_one("BUSY", "BUSY-R1", T0 + day * 86_400.0 + minute * 60.0)
            if minute % 30 == 0:
                alerts += pulse.tick(T0 + day * 86_400.0 + minute * 60.0)
    assert [a for a in alerts if a.entity.id.startswith("SLOW")] == []


def test_a_busy_store_outage_is_alerted_within_fifteen_minutes_and_escalates_with_the_evidence() -> None:
    pulse = SalesPulse(min_sales=10)
    for day in range(3):
        for minute in range(0, 24 * 60):
            ts = T0 + day * 86_400.0 + minute * 60.0
            pulse.learn_one("BUSY", "BUSY-R1", ts)
            pulse.learn_one("OTHER", "OTHER-R1", ts)
    outage = T0 + 3 * 86_400.0
    alerts = []
    for minute in range(1, 60):
        pulse.learn_one("OTHER", "OTHER-R1", outage + minute * 60.0)
        alerts += [(minute, a.severity) for a in pulse.tick(outage + minute * 60.0) if a.entity.id == "BUSY"]
    assert alerts[0][0] <= 15 and alerts[0][1] == Severity.WARNING
    assert [severity for _, severity in alerts] == [Severity.WARNING, Severity.ATTENTION]


def test_silence_alerts_per_store_stay_within_the_daily_budget() -> None:
    pulse = SalesPulse(min_sales=10, max_alerts_per_day=1, store_min_silence_s=60.0)
    for i in range(100):
        pulse.learn_one("FLAKY", "FLAKY-R1", T0 + i * 10.0)
    opened = 0
    for cycle in range(5):  # silent, then a sale, five times in a day
        start = T0 + 1000.0 + cycle * 3000.0
        opened += sum(1 for a in pulse.tick(start + 2000.0) if a.status.value == "open" and a.entity.type == "store")
        pulse.learn_one("FLAKY", "FLAKY-R1", start + 2500.0)
    assert opened == 1


def test_the_silence_watch_holds_one_look_again_per_entity_not_one_per_sale() -> None:
    """At 100 sales a second over 5-minute floors, a heap entry per sale would hold 60,000 (pickled every epoch)."""
    pulse = SalesPulse(store_min_silence_s=300, register_min_silence_s=900, min_sales=5)
    stores = [f"S{n}" for n in range(3)]
    for i in range(60_000):
        store = stores[i % 3]
        pulse.learn_one(store, f"{store}-R{i % 4}", T0 + i * 0.01)
        if i % 1000 == 0:
            pulse.tick(T0 + i * 0.01)
    assert pulse.wakeups <= 2 * (3 + 12)
    # The dark store is still noticed: S0 stops, the others sell on.
    now = T0 + 600.0
    for i in range(3000):
        pulse.learn_one(stores[1 + i % 2], f"{stores[1 + i % 2]}-R1", now + i * 0.5)
    alerts = pulse.tick(now + 1500.0)
    assert [(a.entity.type, a.entity.id) for a in alerts][:1] == [("store", "S0")]


def test_a_silence_watch_pickled_before_the_look_again_bound_resumes_and_still_alerts() -> None:
    pulse = SalesPulse(store_min_silence_s=300, register_min_silence_s=900, min_sales=5)
    for i in range(50):
        pulse.learn_one("S1", "S1-R1", T0 + i * 10.0)
        pulse.learn_one("S2", "S2-R1", T0 + i * 10.0)
    for entry in pulse._pulses.values():  # as written by the release before `wake_at`
        del entry.wake_at
    restored = pickle.loads(pickle.dumps(pulse))
    assert all(entry.wake_at == float("inf") for entry in restored._pulses.values())
    for i in range(200):
        restored.learn_one("S2", "S2-R1", T0 + 500.0 + i * 10.0)
    assert ("store", "S1") in [(a.entity.type, a.entity.id) for a in restored.tick(T0 + 2500.0)]
