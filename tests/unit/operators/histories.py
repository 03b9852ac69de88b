"""Random stock movements for property tests of the ledger and its snapshots."""

from __future__ import annotations

import random

from operators.movements import Move, StockMovement


def random_movements(rng: random.Random, n: int, skus: tuple[str, ...] = ("SKU-1",)) -> list[StockMovement]:
    """`n` movements of every kind at three locations, then a tenth of them redelivered."""
    moves = []
    for i in range(n):
        sku = rng.choice(skus)
        loc = rng.choice(["S1", "S2", "WH"])
        ts = float(rng.randint(0, 5000))
        kind = rng.choice([Move.ON_HAND, Move.ON_HAND, Move.COUNT, Move.RESERVE, Move.FULFIL, Move.CANCEL])
        order = f"O{rng.randint(0, 20)}" if kind in (Move.RESERVE, Move.FULFIL, Move.CANCEL) else None
        sign = rng.choice([-1, 1]) if kind == Move.ON_HAND else 1
        qty = rng.randint(0, 30) if kind == Move.COUNT else sign * rng.randint(1, 5)
        moves.append(StockMovement(sku, loc, kind, qty, ts, f"e{i}", order))
    return moves + rng.sample(moves, n // 10)
