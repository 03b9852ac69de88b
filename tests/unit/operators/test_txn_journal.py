"""`TxnJournal`: POS sales lower on-hand, returns raise it, and a void undoes its sale in any arrival order."""

from __future__ import annotations

import pickle
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from events.models import Count, LineItem, PosPayment, Return, Sale, Void
from operators.movements import Move, StockMovement, inventory_movement
from operators.stock_ledger import StockLedger
from operators.txn_journal import PosEvent, TxnJournal


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def till(store_id: str) -> dict[str, object]:
    return {"schema_version": 1, "store_id": store_id, "register_id": "R1", "cashier_id": "C1", "currency": "EUR"}


def till_txn(kind: type[Sale] | type[Return], event_id: str, txn_id: str, ts: float, lines: tuple[tuple[str, int], ...],
             store_id: str) -> Sale | Return:  # fmt: skip
    items = [LineItem(sku, qty, 1.0) for sku, qty in lines]
    return kind(event_id=event_id, ts=at(ts), txn_id=txn_id, items=items, total=1.0, payment=PosPayment(method="cash"),
                **till(store_id))  # type: ignore[arg-type]  # fmt: skip


def sale(event_id: str, txn_id: str, ts: float, *lines: tuple[str, int], store_id: str = "S1") -> Sale:
    return till_txn(Sale, event_id, txn_id, ts, lines, store_id)  # type: ignore[return-value]


def refund(event_id: str, txn_id: str, ts: float, *lines: tuple[str, int], store_id: str = "S1") -> Return:
    return till_txn(Return, event_id, txn_id, ts, lines, store_id)  # type: ignore[return-value]


def void(event_id: str, original_txn_id: str, ts: float, store_id: str = "S1") -> Void:
    return Void(event_id=event_id, ts=at(ts), txn_id=f"{event_id}-txn", original_txn_id=original_txn_id,
                **till(store_id))  # type: ignore[arg-type]  # fmt: skip


def net(moves: list[StockMovement]) -> dict[tuple[str, str], int]:
    totals: Counter[tuple[str, str]] = Counter()
    for move in moves:
        assert move.kind == Move.ON_HAND
        totals[(move.sku, move.location_id)] += move.qty
    return {key: qty for key, qty in totals.items() if qty}


def test_txn_journal_sale_lowers_on_hand_at_its_store() -> None:
    journal = TxnJournal()

    moves = journal.apply(sale("e1", "T1", 100.0, ("A", 2), ("B", 1), ("A", 1), store_id="S7"))

    assert moves == [
        StockMovement("A", "S7", Move.ON_HAND, -3, 100.0, "e1"),
        StockMovement("B", "S7", Move.ON_HAND, -1, 100.0, "e1"),
    ]


def test_txn_journal_return_raises_on_hand_at_its_store() -> None:
    journal = TxnJournal()

    moves = journal.apply(refund("e1", "T1", 100.0, ("A", 2)))

    assert moves == [StockMovement("A", "S1", Move.ON_HAND, 2, 100.0, "e1")]


def test_txn_journal_void_after_sale_nets_to_zero() -> None:
    journal = TxnJournal()
    moves = journal.apply(sale("e1", "T1", 100.0, ("A", 2), ("B", 1)))

    compensations = journal.apply(void("e2", "T1", 160.0))

    assert compensations == [
        StockMovement("A", "S1", Move.ON_HAND, 2, 100.0, "e2"),  # dated at the sale, not the void
        StockMovement("B", "S1", Move.ON_HAND, 1, 100.0, "e2"),
    ]
    assert net(moves + compensations) == {}


def test_txn_journal_void_before_sale_is_held_and_nets_to_zero() -> None:
    journal = TxnJournal()

    held = journal.apply(void("e2", "T1", 160.0))
    moves = journal.apply(sale("e1", "T1", 100.0, ("A", 2)))

    assert held == []
    assert moves == [
        StockMovement("A", "S1", Move.ON_HAND, -2, 100.0, "e1"),
        StockMovement("A", "S1", Move.ON_HAND, 2, 100.0, "e2"),
    ]
    assert net(moves) == {}


def test_txn_journal_void_of_a_return_nets_to_zero() -> None:
    journal = TxnJournal()
    moves = journal.apply(refund("e1", "T1", 100.0, ("A", 2)))

    moves += journal.apply(void("e2", "T1", 160.0))

    assert moves[-1] == StockMovement("A", "S1", Move.ON_HAND, -2, 100.0, "e2")
    assert net(moves) == {}


@pytest.mark.parametrize("void_first", [False, True])
def test_txn_journal_second_void_of_a_txn_changes_nothing(void_first: bool) -> None:
    journal = TxnJournal()
    events: list[PosEvent] = [sale("e1", "T1", 100.0, ("A", 2)), void("e2", "T1", 160.0)]
    moves = [m for event in (events[::-1] if void_first else events) for m in journal.apply(event)]

    again = journal.apply(void("e3", "T1", 170.0))

    assert again == []
    assert net(moves) == {}


def test_txn_journal_redelivered_void_changes_nothing() -> None:
    journal = TxnJournal()
    journal.apply(sale("e1", "T1", 100.0, ("A", 2)))
    journal.apply(void("e2", "T1", 160.0))

    assert journal.apply(void("e2", "T1", 160.0)) == []


def test_txn_journal_redelivered_sale_repeats_its_event_ids() -> None:
    # The ledger drops the repeat by event_id; the journal must keep ids stable for that.
    journal = TxnJournal()
    first = journal.apply(sale("e1", "T1", 100.0, ("A", 2)))
    first += journal.apply(void("e2", "T1", 160.0))

    again = journal.apply(sale("e1", "T1", 100.0, ("A", 2)))

    assert again == first


def test_txn_journal_holds_a_void_of_an_unknown_txn_until_its_sale() -> None:
    journal = TxnJournal()

    assert journal.apply(void("v9", "T9", 50.0)) == []
    for i in range(20):
        assert journal.apply(sale(f"e{i}", f"T{i}", 60.0 + i, ("A", 1)))[0].event_id == f"e{i}"
    moves = journal.apply(sale("e9x", "T9", 40.0, ("B", 3)))

    assert [(m.sku, m.qty, m.ts, m.event_id) for m in moves] == [("B", -3, 40.0, "e9x"), ("B", 3, 40.0, "v9")]


def test_txn_journal_void_is_applied_at_the_store_of_the_sale() -> None:
    journal = TxnJournal()
    journal.apply(sale("e1", "T1", 100.0, ("A", 2), store_id="S1"))

    moves = journal.apply(void("e2", "T1", 160.0, store_id="S2"))

    assert [(m.location_id, m.qty) for m in moves] == [("S1", 2)]


def test_txn_journal_ages_out_transactions_after_retention() -> None:
    journal = TxnJournal(retention_s=100.0)
    journal.apply(sale("e1", "T1", 0.0, ("A", 1)))
    journal.apply(sale("e2", "T2", 50.0, ("A", 1)))

    journal.apply(sale("e3", "T3", 120.0, ("A", 1)))  # horizon 20: T1 goes, T2 stays

    assert len(journal) == 2
    assert journal.apply(void("v1", "T1", 121.0)) == []  # held: T1 is forgotten
    assert [m.qty for m in journal.apply(void("v2", "T2", 122.0))] == [1]


def test_txn_journal_ages_out_held_voids_after_retention() -> None:
    journal = TxnJournal(retention_s=100.0)
    journal.apply(void("v1", "T1", 0.0))

    journal.apply(sale("e2", "T2", 500.0, ("A", 1)))

    assert len(journal) == 1
    assert [m.event_id for m in journal.apply(sale("e1", "T1", 0.0, ("A", 1)))] == ["e1"]


def test_txn_journal_keeps_a_transaction_within_retention() -> None:
    journal = TxnJournal(retention_s=100.0)
    journal.apply(sale("e1", "T1", 0.0, ("A", 1)))
    journal.apply(sale("e2", "T2", 100.0, ("A", 1)))  # exactly retention_s later

    assert [m.qty for m in journal.apply(void("v1", "T1", 100.0))] == [1]


def test_txn_journal_state_stays_bounded() -> None:
    journal = TxnJournal(retention_s=60.0)
    for i in range(2000):
        journal.apply(sale(f"e{i}", f"T{i}", float(i), ("A", 1)))
        if i % 3 == 0:
            journal.apply(void(f"v{i}", f"T{i}", float(i)))
        if i % 5 == 0:
            journal.apply(void(f"w{i}", f"never-{i}", float(i)))

    assert len(journal) <= 61 + 21 + 13


def test_txn_journal_survives_pickling() -> None:
    journal = TxnJournal()
    journal.apply(void("v1", "T1", 10.0))
    journal.apply(sale("e2", "T2", 20.0, ("A", 2)))

    restored = pickle.loads(pickle.dumps(journal))

    assert [m.event_id for m in restored.apply(sale("e1", "T1", 5.0, ("B", 1)))] == ["e1", "v1"]
    assert [(m.qty, m.event_id) for m in restored.apply(void("v2", "T2", 30.0))] == [(2, "v2")]


# --- property: journal + ledger in any arrival order -------------------------

STORES = ("S1", "S2")
SKUS = ("A", "B", "C")


def random_pos_history(rng: random.Random) -> list[Sale | Return | Void | Count]:
    """Sales, returns, voids (some early, some twice, some of unknown txns) and cycle counts."""
    history: list[Sale | Return | Void | Count] = []
    for t in range(rng.randint(5, 25)):
        store_id, ts = rng.choice(STORES), float(rng.randint(0, 30))
        lines = [(rng.choice(SKUS), rng.randint(1, 4)) for _ in range(rng.randint(1, 3))]
        make = sale if rng.random() < 0.75 else refund
        history.append(make(f"t{t}", f"T{t}", ts, *lines, store_id=store_id))
        for v in range(rng.choice([0, 0, 1, 1, 2])):
            history.append(void(f"v{t}.{v}", f"T{t}", ts + rng.randint(0, 5), store_id=store_id))
    for u in range(rng.randint(0, 2)):
        history.append(void(f"u{u}", f"unknown-{u}", float(rng.randint(0, 30)), store_id=rng.choice(STORES)))
    for c in range(rng.randint(0, 6)):
        history.append(
            Count(
                event_id=f"c{c}",
                ts=at(rng.randint(0, 30)),
                schema_version=1,
                sku=rng.choice(SKUS),
                location_id=rng.choice(STORES),
                on_hand=rng.randint(0, 20),
            )
        )
    return history


def reference_on_hand(history: list[Sale | Return | Void | Count]) -> dict[tuple[str, str], int]:
    """CONTRACT.md "Stock semantics", from first principles: a voided txn has no stock effect at all."""
    voided = {e.original_txn_id for e in history if isinstance(e, Void)}
    changes: list[tuple[str, str, float, int]] = []
    for e in history:
        if isinstance(e, Sale | Return) and e.txn_id not in voided:
            sign = -1 if isinstance(e, Sale) else 1
            changes += [(i.sku, e.store_id, e.ts.timestamp(), sign * i.qty) for i in e.items]
    counts = [e for e in history if isinstance(e, Count)]
    keys = {(sku, store) for sku, store, _, _ in changes} | {(c.sku, c.location_id) for c in counts}
    on_hand = {}
    for sku, store in keys:
        here = [(ts, qty) for s, loc, ts, qty in changes if (s, loc) == (sku, store)]
        counted = [c for c in counts if (c.sku, c.location_id) == (sku, store)]
        if counted:
            latest = max(counted, key=lambda c: (c.ts, c.event_id))
            on_hand[(sku, store)] = latest.on_hand + sum(q for ts, q in here if ts > latest.ts.timestamp())
        else:
            on_hand[(sku, store)] = sum(q for _, q in here)
    return on_hand


def run_pos(events: list[Sale | Return | Void | Count]) -> dict[tuple[str, str], int]:
    journals = {store_id: TxnJournal() for store_id in STORES}
    ledgers = {sku: StockLedger(sku) for sku in SKUS}
    for event in events:
        if isinstance(event, Count):
            ledgers[event.sku].apply(inventory_movement(event))
        else:
            for move in journals[event.store_id].apply(event):
                ledgers[move.sku].apply(move)
    return {(sku, s.location_id): s.on_hand for sku, ledger in ledgers.items() for s in ledger.stock().locations}


def test_txn_journal_and_ledger_match_the_contract_in_any_arrival_order() -> None:
    for seed in range(300):
        rng = random.Random(seed)
        history = random_pos_history(rng)
        expected = reference_on_hand(history)
        redelivered = history + [rng.choice(history) for _ in range(rng.randint(0, 5))]
        for _ in range(4):
            arrival = redelivered[:]
            rng.shuffle(arrival)

            got = run_pos(arrival)

            # A location touched only by voided txns shows on_hand 0; the reference lists only non-zero effects.
            assert {k: v for k, v in got.items() if v or k in expected} == expected, (seed, arrival)


def test_txn_journal_counts_a_void_that_ages_out_before_its_sale() -> None:
    till = dict(schema_version=1, store_id="S1", register_id="R1", cashier_id="C1", currency="EUR")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    journal = TxnJournal(retention_s=60)
    journal.apply(Void(event_id="v1", ts=start, txn_id="T9", original_txn_id="T-never", **till))
    assert journal.unmatched_voids == 0
    journal.apply(Void(event_id="v2", ts=start + timedelta(seconds=120), txn_id="T10", original_txn_id="T-x", **till))
    assert journal.unmatched_voids == 1


def test_txn_journal_restored_from_bytes_mid_stream_moves_stock_like_the_uninterrupted_one() -> None:
    # The flow snapshots journals with `to_bytes`; a restore at any point must
    # keep every remembered sale and held void, and the aged-out count.
    for seed in range(100):
        rng = random.Random(seed)
        events = [e for e in random_pos_history(rng) if not isinstance(e, Count) and e.store_id == "S1"]
        rng.shuffle(events)
        whole = TxnJournal(retention_s=20)
        moves_whole = [whole.apply(e) for e in events]

        resumed = TxnJournal(retention_s=20)
        moves_resumed = []
        for event in events:
            if rng.random() < 0.4:
                resumed = TxnJournal.from_bytes(resumed.to_bytes())
            moves_resumed.append(resumed.apply(event))

        assert moves_resumed == moves_whole, seed
        assert (resumed.unmatched_voids, len(resumed)) == (whole.unmatched_voids, len(whole)), seed
