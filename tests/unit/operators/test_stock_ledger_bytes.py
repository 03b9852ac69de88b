"""`StockLedger.to_bytes` / `from_bytes`: the flow's snapshot format loses nothing."""

from __future__ import annotations

import random

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
