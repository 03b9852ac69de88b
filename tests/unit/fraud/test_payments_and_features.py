"""Payments normalised from events, and the per-entity feature state built from them."""

from __future__ import annotations

import math
import pickle

import numpy as np

from events.topics import Topic
from operators.fraud.features import (
    FEATURE_DEFAULTS,
    FEATURE_NAMES,
    CardVelocity,
    OrderChecks,
    RegisterBehaviour,
    ShopperHistory,
    feature_matrix,
    scale_matrix,
    vectorize,
)
from operators.fraud.payments import payment_of, till_action_of
from tests.unit.fraud.builders import T0, action, event, online, purchase_event, sale_event, till


def test_payment_of_purchase_keeps_countries_device_and_order_id() -> None:
    payment = payment_of(purchase_event(5.0, "O-9", ip_country="NG", billing_country="US", user_id="U-7"))
    assert payment is not None
    assert (payment.payment_id, payment.id_field, payment.channel) == ("O-9", "order_id", "web")
    assert (payment.ip_country, payment.billing_country, payment.shipping_country) == ("NG", "US", "NG")
    assert payment.user_id == "U-7" and payment.ts == T0 + 5.0 and payment.store_id is None


def test_payment_of_cash_sale_is_a_payment_without_a_card() -> None:
    payment = payment_of(sale_event(0.0, "T-1", card_token=None))
    assert payment is not None and payment.card_token is None and payment.method == "cash"


def test_returns_voids_and_clicks_are_not_payments_but_till_actions_where_at_a_till() -> None:
    ret = event(Topic.POS, "return", 0.0, "e-r", store_id="S1", register_id="S1-R2", cashier_id="C-3", txn_id="T-2",
                currency="USD", items=[{"sku": "A", "qty": 1, "unit_price": 9.0}], total=9.0,
                payment={"method": "cash"})  # fmt: skip
    void = event(Topic.POS, "void", 1.0, "e-v", store_id="S1", register_id="S1-R2", cashier_id="C-3", txn_id="T-3",
                 currency="USD", original_txn_id="T-1")  # fmt: skip
    view = event(Topic.CLICKSTREAM, "page_view", 2.0, "e-p", session_id="S", channel="web", path="/")
    assert payment_of(ret) is None and payment_of(void) is None and payment_of(view) is None
    returned, voided = till_action_of(ret), till_action_of(void)
    assert returned is not None
    assert (returned.kind, returned.with_receipt, returned.cashier_id) == ("return", False, "C-3")
    assert voided is not None and (voided.kind, voided.amount) == ("void", 0.0)
    assert till_action_of(view) is None


def test_card_velocity_counts_windows_ending_at_the_payment_itself() -> None:
    card = CardVelocity()
    for i in range(5):
        card.learn_one(online(i * 100.0, 5.0, payment_id=f"O{i}"))
    f = card.learn_one(online(500.0, 500.0, payment_id="O5"))
    assert f["card_payments_10m"] == 6.0  # 0..500 s: all within 10 minutes, itself included
    assert f["card_payments_1m"] == 1.0
    assert f["card_spend_10m"] == 525.0
    assert math.isclose(f["card_small_share_10m"], 5 / 6)


def test_card_velocity_restores_from_its_pickle_and_from_the_slot_dict_of_older_snapshots() -> None:
    card = CardVelocity()
    for i in range(3):
        card.learn_one(online(i * 100.0, 5.0, payment_id=f"O{i}"))
    restored = pickle.loads(pickle.dumps(card))
    older = CardVelocity.__new__(CardVelocity)  # what a snapshot before `__getstate__` held
    older.__setstate__(
        (None, pickle.loads(pickle.dumps({name: getattr(card, name) for name in CardVelocity.__slots__})))
    )
    expected = card.learn_one(online(350.0, 5.0, payment_id="O3"))
    for twin in (restored, older):
        assert twin.learn_one(online(350.0, 5.0, payment_id="O3")) == expected
        assert twin.__getstate__() == card.__getstate__()


def test_card_velocity_late_payment_does_not_see_the_future() -> None:
    card = CardVelocity()
    card.learn_one(online(1000.0, payment_id="late-known"))
    f = card.learn_one(online(10.0, payment_id="early"))  # arrives after a payment dated later
    assert f["card_payments_1h"] == 1.0


def test_card_velocity_memory_is_bounded_by_max_payments() -> None:
    card = CardVelocity(max_payments=50)
    for i in range(1000):
        f = card.learn_one(online(i * 0.1, payment_id=f"O{i}"))
    assert f["card_payments_1m"] == 50.0
    assert len(pickle.dumps(card)) < 10_000


def test_card_owner_absent_when_a_known_accounts_card_pays_without_it() -> None:
    card = CardVelocity()
    assert card.learn_one(online(0.0, user_id="U-1"))["card_owner_absent"] == 0.0
    assert card.learn_one(online(60.0, user_id="U-1"))["card_owner_absent"] == 0.0
    assert card.learn_one(till(120.0))["card_owner_absent"] == 1.0  # the same card at a till, no loyalty id


def test_shopper_history_flags_takeover_but_not_a_first_online_order_after_till_visits() -> None:
    shopper = ShopperHistory()
    shopper.learn_one(till(0.0, customer_id="U-1"))  # till visits: no device, no country
    first_online = shopper.learn_one(online(600.0, user_id="U-1"))
    assert (first_online["user_new_device"], first_online["user_new_country"]) == (0.0, 0.0)
    for i in range(5):
        shopper.learn_one(online(1200.0 + i, 40.0 + i, user_id="U-1"))
    takeover = shopper.learn_one(online(7200.0, 1500.0, user_id="U-1", device_id="D-X", ip_country="RO",
                                        shipping_country="RO"))  # fmt: skip
    assert takeover["user_known"] == 1.0
    assert takeover["user_new_device"] == 1.0 and takeover["user_new_country"] == 1.0
    assert takeover["user_amount_z"] > 3.0


def test_shopper_history_remembers_a_bounded_number_of_devices() -> None:
    shopper = ShopperHistory(max_known=3)
    for i in range(20):
        shopper.learn_one(online(i, device_id=f"D-{i}"))
    assert len(shopper._devices) == 3


def test_order_checks_only_flag_mismatches_between_known_countries() -> None:
    checks = OrderChecks(high_value=1000.0)
    assert (
        checks.learn_one(online(ip_country="NG", billing_country="US", shipping_country="NG"))["ip_billing_mismatch"]
        == 1.0
    )
    unknown = checks.learn_one(online(ip_country=None, billing_country="US", shipping_country=None))
    assert unknown["ip_billing_mismatch"] == unknown["ship_billing_mismatch"] == 0.0
    keyed = checks.learn_one(till(amount=1200.0, entry_mode="manual"))
    assert keyed["manual_entry"] == keyed["high_value"] == 1.0 and keyed["card_not_present"] == 0.0


def test_register_behaviour_singles_out_the_cashier_refunding_without_receipts() -> None:
    store = RegisterBehaviour()
    for i, cashier in enumerate(["C-2", "C-3", "C-4"]):
        store.learn_one(action("return", i * 10.0, cashier_id=cashier))
    for i in range(7):
        f = store.learn_one(action("return", 100.0 + i * 60.0, cashier_id="C-1"))
    assert f["cashier_noreceipt_30m"] == 7.0
    assert f["cashier_noreceipt_excess"] == 6.0  # colleagues: one each
    with_receipt = store.learn_one(action("return", 600.0, cashier_id="C-5", with_receipt=True))
    assert with_receipt["cashier_noreceipt_30m"] == 0.0


def test_register_behaviour_forgets_returns_older_than_its_window() -> None:
    store = RegisterBehaviour(window_s=1800.0)
    for i in range(6):
        store.learn_one(action("return", i * 10.0))
    f = store.learn_one(action("return", 4000.0))
    assert f["cashier_noreceipt_30m"] == 1.0


def test_register_behaviour_tracks_a_bounded_number_of_cashiers() -> None:
    store = RegisterBehaviour(max_cashiers=10)
    for i in range(100):
        store.learn_one(action("void", float(i), cashier_id=f"C-{i}"))
    assert len(store._actions) == 10 and len(store._norm) <= 10


def test_register_behaviour_forgets_the_least_recently_active_cashier_first() -> None:
    store = RegisterBehaviour(max_cashiers=3)
    for i, cashier in enumerate(["C-1", "C-2", "C-3", "C-1"]):  # C-1 returns again: now the most recent
        store.learn_one(action("return", i * 10.0, cashier_id=cashier))
    store.learn_one(action("sale", 40.0, cashier_id="C-2"))  # a sale is not return-or-void activity
    store.learn_one(action("void", 50.0, cashier_id="C-4"))  # a fourth cashier: C-2 goes
    assert store.learn_one(action("return", 60.0, cashier_id="C-2"))["cashier_noreceipt_30m"] == 1.0  # C-3 goes
    assert store.learn_one(action("return", 70.0, cashier_id="C-1"))["cashier_noreceipt_30m"] == 3.0
    assert store.learn_one(action("return", 80.0, cashier_id="C-3"))["cashier_noreceipt_30m"] == 1.0
    assert list(store._actions) == ["C-2", "C-1", "C-3"]  # least recently active first


def test_register_behaviour_snapshot_from_before_the_ordered_dict_carries_on_alike() -> None:
    steps = [("return", "C-1"), ("void", "C-2"), ("return", "C-3"), ("return", "C-1"), ("return", "C-4")]
    steps += [("return", "C-5"), ("void", "C-2"), ("return", "C-6"), ("return", "C-1")]
    kept, restored = RegisterBehaviour(max_cashiers=3), RegisterBehaviour(max_cashiers=3)
    for i, (kind, cashier) in enumerate(steps[:4]):
        kept.learn_one(action(kind, i * 10.0, cashier_id=cashier))
        restored.learn_one(action(kind, i * 10.0, cashier_id=cashier))
    restored.__dict__["_actions"] = dict(restored.__dict__["_actions"])  # the state as earlier releases pickled it
    restored = pickle.loads(pickle.dumps(restored, protocol=pickle.HIGHEST_PROTOCOL))
    for i, (kind, cashier) in enumerate(steps[4:], start=4):
        ts = i * 10.0
        assert restored.learn_one(action(kind, ts, cashier_id=cashier)) == kept.learn_one(
            action(kind, ts, cashier_id=cashier)
        )
    assert list(restored._actions) == list(kept._actions) == ["C-2", "C-6", "C-1"]


def test_vectorize_and_scale_matrix_agree_and_survive_bad_values() -> None:
    rows = [
        {"amount": 120.0, "card_payments_10m": 3.0, "manual_entry": 1.0},
        {"amount": float("nan"), "user_amount_z": float("inf"), "card_spend_1h": -5.0},
        {},
    ]
    scaled = scale_matrix(feature_matrix(rows))
    assert np.allclose(scaled, np.asarray([vectorize(r) for r in rows]))
    assert np.isfinite(scaled).all() and (scaled >= 0).all() and (scaled <= 1).all()
    assert scaled[1, FEATURE_NAMES.index("user_amount_z")] == 1.0


def test_feature_matrix_reads_full_and_partial_dicts_alike() -> None:
    full = FEATURE_DEFAULTS | {"amount": 7.0}
    assert (feature_matrix([full]) == feature_matrix([{"amount": 7.0}])).all()


def test_feature_state_pickles_for_recovery_snapshots() -> None:
    card, shopper, store = CardVelocity(), ShopperHistory(), RegisterBehaviour()
    card.learn_one(online(0.0))
    shopper.learn_one(online(0.0))
    store.learn_one(action("return", 0.0))
    for state in (card, shopper, store):
        clone = pickle.loads(pickle.dumps(state))
        assert pickle.dumps(clone) == pickle.dumps(state)
