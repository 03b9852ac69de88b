"""`StockLedger.to_bytes` / `from_bytes`: the flow's snapshot format loses nothing."""

from __future__ import annotations

import random

from operators.movements import Move, StockMovement
from operators.stock_ledger import StockLedger
from tests.unit.operators.histories import random_movements


def test_stock_ledger_restored_from_bytes_mid_stream_ends_like_the_uninterrupted_one() -> None:
    for seed in range(60):
        rng = random.Random(seed)
        moves = random_movements(rng, 150)
        whole = StockLedger("SKU-1", low_stock_threshold=3)
        alerts_whole = [whole.apply(m) for m in moves]

        resumed = StockLedger("SKU-1", low_stock_threshold=3)
        alerts_resumed = []
        cuts = sorted(rng.sample(range(1, len(moves)), 3))
        for i, move in enumerate(moves):
            if i in cuts:
                resumed = StockLedger.from_bytes(resumed.to_bytes())
            alerts_resumed.append(resumed.apply(move))

        assert resumed.stock() == whole.stock(), f"seed {seed}"
        assert resumed.duplicates == whole.duplicates
        assert alerts_resumed == alerts_whole


# A ledger's bytes as the release before `SeenEvents.to_state` wrote them (dedup window 100 s,
# low stock at 1): S1 received 10 at ts 0 ("receipt-1") and sold 3 at ts 50 ("sale-1"); order-1
# reserved 2 at S2 at ts 60 ("buy-1").
_EARLIER_RELEASE = bytes.fromhex(
    "9aa5534b552d31cb4059000000000000cb40d5180000000000cb41227500000000000103cb404e0000000000000094cb40590000"
    "00000000cb404e000000000000c418000000000000000000000000000049400000000000004e40c418566fd11563f6a009ae6524"
    "5a94e2e870aa9984d72c71ee6482a253319b0700cbfff0000000000000a09292cb00000000000000000a92cb4049000000000000"
    "fdcbfff000000000000080cb4049000000000000004040a253329b0002cbfff0000000000000a090cbfff000000000000081a76f"
    "726465722d31940200c2cb404e000000000000cb404e000000000000034040"
)


def test_stock_ledger_bytes_of_the_earlier_release_resume_with_their_seen_ids() -> None:
    ledger = StockLedger.from_bytes(_EARLIER_RELEASE)

    assert ledger.apply(StockMovement("SKU-1", "S1", Move.ON_HAND, -3, 50.0, "sale-1")) is None  # redelivered
    assert ledger.duplicates == 1
    ledger.apply(StockMovement("SKU-1", "S1", Move.ON_HAND, -1, 70.0, "sale-2"))

    assert [(s.location_id, s.on_hand, s.reserved) for s in ledger.stock().locations] == [("S1", 6, 0), ("S2", 0, 2)]
    assert ledger.version == 4
