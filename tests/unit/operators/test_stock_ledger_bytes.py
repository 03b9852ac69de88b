"""`StockLedger.to_bytes` / `from_bytes`: the flow's snapshot format loses nothing."""

from __future__ import annotations

import random

from operators.movements import Move, StockMovement
from operators.stock_ledger import StockLedger


def _history(rng: random.Random, n: int) -> list[StockMovement]:
    moves = []
    for i in range(n):
        loc = rng.choice(["S1", "S2", "WH"])
        ts = float(rng.randint(0, 5000))
        kind = rng.choice([Move.ON_HAND, Move.ON_HAND, Move.COUNT, Move.RESERVE, Move.FULFIL, Move.CANCEL])
        order = f"O{rng.randint(0, 20)}" if kind in (Move.RESERVE, Move.FULFIL, Move.CANCEL) else None
        sign = rng.choice([-1, 1]) if kind == Move.ON_HAND else 1
        qty = rng.randint(0, 30) if kind == Move.COUNT else sign * rng.randint(1, 5)
        moves.append(StockMovement("SKU-1", loc, kind, qty, ts, f"e{i}", order))
    return moves + rng.sample(moves, n // 10)  # redeliveries


def test_stock_ledger_restored_from_bytes_mid_stream_ends_like_the_uninterrupted_one() -> None:
    for seed in range(60):
        rng = random.Random(seed)
        moves = _history(rng, 150)
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
