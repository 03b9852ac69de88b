"""`operators.customers`: the customers stage's pure logic, fed as the flow feeds it."""

from __future__ import annotations

import random
from typing import Literal

import orjson

from events.triggers import TriggerKind
from operators.customers.clock import EventClock
from operators.customers.doc import customer_doc
from operators.customers.gate import TriggerGate
from operators.customers.lifecycle import DAY_S, LifecycleRules
from operators.customers.packing import pack, unpack
from operators.customers.profile import CustomerConfig
from operators.customers.records import Bought, Candidate, Clicked, ConsentSeen, Flip, PaymentSeen, Tick, Watch
from operators.customers.shard import CustomerShard
from operators.customers.watches import StockWatches

RULES = LifecycleRules(new_s=1 * DAY_S, at_risk_s=2 * DAY_S, lapsed_s=4 * DAY_S, won_back_s=1 * DAY_S)
CONFIG = CustomerConfig(lifecycle=RULES, windows_s=(DAY_S, 3 * DAY_S), cart_window_s=600.0, lateness_s=60.0,
                        idle_s=10 * DAY_S, vip_spend=100.0)  # fmt: skip


def tick(ts: float) -> Tick:
    return Tick(((("pos", 0), ts),))


def buy(event_id: str, ts: float, amount: float = 10.0, customer: str = "C1") -> Bought:
    return Bought(customer, event_id, ts, amount, "store", "S1", None, ("SKU-1",))


def test_the_same_events_in_other_batches_give_the_same_customer_and_version() -> None:
    events = [buy("b1", 0.0), Clicked("C1", "c1", 50.0, "cart", "SKU-2", "web", "FR"), buy("b2", 3 * DAY_S),
              buy("b2", 3 * DAY_S), buy("b3", 3.5 * DAY_S, 95.0)]  # fmt: skip
    one = CustomerShard(CONFIG)
    one.apply([*events, tick(10 * DAY_S)])
    split = CustomerShard(CONFIG)
    for event in events:
        split.apply([event, tick(event.ts)])
    split.apply([tick(10 * DAY_S)])

    a, b = one.state_of("C1"), split.state_of("C1")
    assert a is not None and b is not None
    assert a.version == b.version
    now = 10 * DAY_S
    assert orjson.dumps(customer_doc("C1", a, CONFIG, now)) == orjson.dumps(customer_doc("C1", b, CONFIG, now))
    assert (a.orders, a.spend, a.stage, a.vip) == (3, 115.0, "lapsed", True)


def test_the_version_does_not_depend_on_how_the_topics_interleave() -> None:
    """A replay after a crash reads the topics (clicks, tills, consent) interleaved otherwise than the killed run:
    the same activities must give the same version, or the fence keeps the killed run's older document."""
    rng = random.Random(5)
    for trial in range(200):
        clicks = [Clicked("C1", f"c{i}", 10.0 * i, rng.choice(["view", "cart"]), "SKU-2", "web", None)
                  for i in range(rng.randrange(0, 4))]  # fmt: skip
        tills = [buy(f"b{i}", 10.0 * i + 5.0) for i in range(rng.randrange(0, 3))]
        consents = [ConsentSeen("C1", f"k{i}", 10.0 * i + 7.0, bool(i % 2)) for i in range(rng.randrange(0, 2))]
        if not clicks + tills + consents:
            continue
        versions, docs = set(), set()
        for _ in range(4):  # each topic in its own order, the topics merged at random
            streams = [list(clicks), list(tills), list(consents)]
            merged: list[object] = []
            while any(streams):
                merged.append(rng.choice([s for s in streams if s]).pop(0))
            shard = CustomerShard(CONFIG)
            shard.apply([*merged, tick(6 * DAY_S)])
            state = shard.state_of("C1")
            assert state is not None
            versions.add(state.version)
            docs.add(orjson.dumps(customer_doc("C1", state, CONFIG, 6 * DAY_S)))
        assert len(versions) == 1 and len(docs) == 1, (trial, versions)


def test_a_purchase_that_overtakes_an_earlier_one_makes_no_quiet_spell() -> None:
    shard = CustomerShard(CONFIG)
    shard.apply([buy("b1", 0.0), tick(60.0)])
    # The purchase of day 3 arrives first; the one of day 1.5, on another partition, is still in flight.
    out = shard.apply([buy("b3", 3 * DAY_S), tick(1.4 * DAY_S)])
    out2 = shard.apply([buy("b2", 1.5 * DAY_S), tick(3 * DAY_S + 120.0)])

    assert [c.kind for c in out.candidates + out2.candidates] == []  # never two days without a purchase
    state = shard.state_of("C1")
    assert state is not None and state.stage == "active" and state.orders == 3


def test_time_alone_walks_the_lifecycle_and_fires_at_risk_then_win_back_at_their_exact_times() -> None:
    shard = CustomerShard(CONFIG)
    shard.apply([buy("b1", 1000.0), tick(1100.0)])
    fired = shard.apply([tick(1000.0 + 5 * DAY_S + 60.0)]).candidates  # other customers' traffic moved the clock

    assert [(c.kind, c.due_ts) for c in fired] == [
        (TriggerKind.AT_RISK, 1000.0 + 2 * DAY_S),
        (TriggerKind.WIN_BACK, 1000.0 + 4 * DAY_S),
    ]
    assert fired[0].trigger_id == "at_risk:C1:at_risk:1000000"


def test_a_cart_settled_by_a_purchase_that_arrives_late_but_within_the_lateness_fires_nothing() -> None:
    shard = CustomerShard(CONFIG)
    shard.apply([Clicked("C1", "c1", 0.0, "cart", "SKU-1", "web", None), tick(630.0)])  # deadline 600, lateness 60
    out = shard.apply([buy("b1", 590.0), tick(700.0)])  # the till sale, 40 s late

    assert out.candidates == []


def test_the_gate_honours_a_consent_change_that_arrives_after_the_candidate_but_before_its_due_time_passes() -> None:
    gate = TriggerGate(cooldown_s=3600.0, lateness_s=0.0, idle_s=DAY_S)
    cart = Candidate("C1", TriggerKind.CART_ABANDONED, 100.0, "SKU-1:c1", (), (), ("c1",))
    assert gate.apply([tick(50.0), cart]) == []
    assert gate.apply([ConsentSeen("C1", "k1", 90.0, False), tick(200.0)]) == []
    assert gate.suppressed["no_consent"] == 1
    later = Candidate("C1", TriggerKind.CART_ABANDONED, 300.0, "SKU-2:c2", (), (), ("c2",))
    assert gate.apply([ConsentSeen("C1", "k2", 250.0, True), later, tick(400.0)]) == [later]


def test_a_view_is_judged_by_the_availability_at_its_own_time() -> None:
    watches = StockWatches(window_s=DAY_S)
    history = [Flip("SKU-1", "S1", 10.0, False, 1), Flip("SKU-1", "S1", 100.0, True, 2)]
    late_view = Watch("C1", "SKU-1", 50.0, "S1", "v1")  # arrives after the restock it preceded
    after_restock = Watch("C2", "SKU-1", 150.0, "S1", "v2")
    unknown = Watch("C3", "SKU-9", 50.0, "S1", "v3")

    fired = watches.apply([*history, late_view, after_restock, unknown])

    assert [(c.trigger_id, c.due_ts) for c in fired] == [("back_in_stock:C1:SKU-1:v1", 100.0)]


def test_the_clock_waits_for_every_partition_unless_one_stays_silent() -> None:
    clock = EventClock(lateness_s=10.0, idle_s=600.0, expected=3)
    assert clock.advance([(("pos", 0), 1000.0), (("clickstream", 0), 1300.0)]) == float("-inf")
    assert clock.advance([(("customers", 0), 900.0)]) == 890.0  # all three heard from: the oldest rules
    silent = EventClock(lateness_s=10.0, idle_s=600.0, expected=3)
    assert silent.advance([(("pos", 0), 1000.0), (("clickstream", 0), 1700.0)]) == 1690.0  # 600 s went by


def test_packed_states_decode_to_exactly_the_state_the_shard_worked_with() -> None:
    rng = random.Random(5)
    shard = CustomerShard(CONFIG)
    checked = opened = 0
    now = 0.0
    for step in range(300):
        items: list[object] = []
        for n in range(20):
            customer, ts = f"C{rng.randrange(40)}", now + rng.uniform(-120.0, 600.0)
            event_id, roll = f"e{step}.{n}", rng.random()
            if roll < 0.3:
                amount = rng.choice([10.0, 33.3, 120.0, -5.5])  # returns too
                items.append(Bought(customer, event_id, ts, amount, "web", rng.choice([None, "S1", "S2"]),
                                    rng.choice([None, "DE", "FR"]), ("SKU-1",)))  # fmt: skip
            elif roll < 0.8:
                kind: Literal["view", "cart", "uncart"] = rng.choice(["view", "cart", "uncart"])
                items.append(Clicked(customer, event_id, ts, kind, f"SKU-{rng.randrange(3)}", "app", None))
            elif roll < 0.9:
                items.append(PaymentSeen(customer, event_id, ts, f"p{rng.randrange(5)}", rng.random() < 0.5, 9.0))
            else:
                items.append(ConsentSeen(customer, event_id, ts, rng.random() < 0.5))
        now += rng.choice([60.0, 3600.0, DAY_S / 2])
        out = shard.apply([*items, tick(now)])
        for customer, state in out.changed.items():
            assert unpack(pack(state)) == state
            assert shard.state_of(customer) == state
            checked += 1
            opened += bool(state.carts or state.fails or state.views or state.ahead or state.approved)
    assert checked > 1000 and opened > 100  # open moments too


def test_a_changed_customer_names_every_stage_held_since_their_last_document() -> None:
    shard = CustomerShard(CONFIG)
    first = shard.apply([buy("b1", 1000.0), tick(1060.0)])
    assert first.changed["C1"].stage == "new" and first.visited["C1"] - {"new"} == {"prospect"}
    # Time alone: new -> active -> at_risk in one batch. A run killed after writing `active` and replayed
    # in this batch writes only `at_risk`: the segments writer must take C1 out of `active` too.
    later = shard.apply([tick(2.5 * DAY_S)])
    assert later.changed["C1"].stage == "at_risk" and later.visited["C1"] - {"at_risk"} == {"new", "active"}
    back = shard.apply([buy("b2", 2.6 * DAY_S, 150.0), tick(2.7 * DAY_S)])
    assert back.changed["C1"].stage == "active" and back.visited["C1"] - {"active"} == {"at_risk"}
    assert back.changed["C1"].vip
    assert shard.apply([tick(2.8 * DAY_S)]).visited == {}  # nothing changed: nothing to write
