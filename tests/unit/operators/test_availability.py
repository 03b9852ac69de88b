"""The ledger reports unchanged locations as the same objects; sellable flips skip them and still equal a full look."""

from __future__ import annotations

import random

from operators.availability import SellableFlips
from operators.movements import Move, StockMovement
from operators.stock_ledger import StockLedger


def test_flips_skipping_unchanged_locations_equal_a_full_look_every_time() -> None:
    rng = random.Random(7)
    ledger = StockLedger("SKU-1", low_stock_threshold=1)
    skipping, full = SellableFlips(), SellableFlips()
    stocks = 0
    for n in range(3_000):
        location = f"S{rng.randrange(12)}"
        kind = rng.choice([Move.ON_HAND, Move.ON_HAND, Move.COUNT, Move.RESERVE, Move.FULFIL, Move.CANCEL])
        qty = rng.randrange(0 if kind is Move.CANCEL else 1, 4) * (rng.choice([1, -1]) if kind is Move.ON_HAND else 1)
        order = f"O{rng.randrange(40)}" if kind in (Move.RESERVE, Move.FULFIL, Move.CANCEL) else None
        ledger.apply(StockMovement("SKU-1", location, kind, qty, float(n), f"e{n}", order))
        if rng.random() < 0.3:
            continue  # several movements per stock record, as in a batch
        if rng.random() < 0.05:
            skipping.forget_seen()  # a snapshot in between
        if rng.random() < 0.02:
            ledger = StockLedger.from_bytes(ledger.to_bytes())  # restored: every location built anew
        stock = ledger.stock()
        full.forget_seen()
        assert skipping.changes(stock) == full.changes(stock)
        stocks += 1
    assert stocks > 1_000 and skipping.skus == full.skus


def test_stock_reuses_the_locations_that_did_not_change() -> None:
    ledger = StockLedger("SKU-1")
    for n, location in enumerate(["S2", "S1", "S3"]):
        ledger.apply(StockMovement("SKU-1", location, Move.ON_HAND, 5, float(n), f"e{n}"))
    before = ledger.stock()
    ledger.apply(StockMovement("SKU-1", "S2", Move.ON_HAND, -1, 9.0, "e9"))
    after = ledger.stock()
    assert [loc.location_id for loc in after.locations] == ["S1", "S2", "S3"]
    assert after.locations[0] is before.locations[0] and after.locations[2] is before.locations[2]
    assert after.locations[1].on_hand == 4 and after.version == 4
    assert StockLedger.from_bytes(ledger.to_bytes()).stock() == after


def test_a_ledger_pickled_by_the_code_before_the_stock_cache_restores_and_reports_every_location() -> None:
    ledger = StockLedger("SKU-1")
    for n, location in enumerate(["S1", "S2"]):
        ledger.apply(StockMovement("SKU-1", location, Move.ON_HAND, 5, float(n), f"e{n}"))
    expected = ledger.stock()
    old = StockLedger.__new__(StockLedger)
    state = dict(ledger.__dict__)
    del state["_stale"]  # the code before it had no `_stale`, and a `_shown` of the locations reported so far
    state["_shown"] = {"S2": expected.locations[1]}
    old.__setstate__(state)
    assert old.stock() == expected
    old.apply(StockMovement("SKU-1", "S1", Move.ON_HAND, -1, 5.0, "e5"))
    assert [loc.on_hand for loc in old.stock().locations] == [4, 5]
