"""What the inventory flow keeps per event is invisible to the cycle collector.

A tailing flow keeps something per movement for an hour or more (late-count
history, till transactions, shaped document fragments). Every tracked object
kept there is walked by the next young collection; with tuples kept per event,
those collections were the flow's longest pauses under load (20-90 ms). These
tests count tracked objects, so they fail if per-event state becomes tracked
again, whatever its shape.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from events.models import LineItem, PosPayment, Sale
from events.stock import LocationStock, SkuStock
from operators.movements import Move, StockMovement
from operators.stock_ledger import StockLedger
from operators.txn_journal import TxnJournal
from state.stock_writer import DocumentShaper

N = 2_000
ALLOWED = 50  # containers that grow, caches created on first use: a constant, not one per event


def tracked_growth(keep: Callable[[], Any]) -> int:
    """Tracked objects added by `keep()` and still alive, with the collector held off meanwhile."""
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        kept = keep()
        growth = len(gc.get_objects()) - before
    finally:
        gc.enable()
    del kept
    return growth


def test_a_ledger_keeps_its_late_count_history_untracked() -> None:
    ledger = StockLedger("SKU-1")
    ledger.apply(StockMovement("SKU-1", "S1", Move.ON_HAND, 1, 0.0, "warm-up"))
    moves = [StockMovement("SKU-1", "S1", Move.ON_HAND, 1, float(i), f"e{i}") for i in range(1, N + 1)]

    def apply_all() -> StockLedger:
        for move in moves:
            ledger.apply(move)
        return ledger

    assert tracked_growth(apply_all) < ALLOWED
    assert ledger.stock().locations[0].on_hand == N + 1  # the movements were applied and kept


def test_a_till_journal_keeps_its_transactions_untracked() -> None:
    journal = TxnJournal()
    sales = [
        Sale(event_id=f"e{i}", ts=datetime.fromtimestamp(1_800_000_000 + i, UTC), txn_id=f"T{i}", total=1.0,
             items=[LineItem("SKU-1", 1, 1.0)], payment=PosPayment(method="cash"), schema_version=1,
             store_id="S1", register_id="R1", cashier_id="C1", currency="EUR")
        for i in range(N)
    ]  # fmt: skip

    def apply_all() -> TxnJournal:
        for sale in sales:
            journal.apply(sale)
        return journal

    assert tracked_growth(apply_all) < ALLOWED
    assert len(journal) == N


def test_the_document_shaper_caches_fragments_untracked() -> None:
    shaper = DocumentShaper()
    stocks = [SkuStock(f"SKU-{i}", 1, 0.0, (LocationStock("S1", i, 0, 0.0),)) for i in range(N)]

    def shape_all() -> DocumentShaper:
        for stock in stocks:
            shaper.shape(stock)  # the documents go to Redis; the shaper keeps a fragment per location
        return shaper

    assert tracked_growth(shape_all) < ALLOWED
    assert shaper.shape(stocks[7])[0].startswith(b'{"sku":"SKU-7"')
