"""`LedgerUnit`: one SKU's ledger, snapshotted and restored at any point without losing or staling anything."""

from __future__ import annotations

import random

from operators.ledger_shard import LedgerUnit
from operators.movements import Move, StockMovement
from operators.stock_ledger import StockLedger
from tests.unit.operators.histories import random_movements


def _new_ledger(sku: str) -> StockLedger:
    return StockLedger(sku, low_stock_threshold=3)


def test_a_unit_snapshotted_and_restored_at_random_points_ends_like_the_uninterrupted_one() -> None:
    # Snapshots in the middle of the stream, each followed by more movements, so that
    # bytes not refreshed after a change would be restored stale and end differently.
    for seed in range(40):
        rng = random.Random(seed)
        moves = random_movements(rng, 200, ("SKU-1",))
        batches = [moves[i : i + rng.randint(1, 15)] for i in range(0, len(moves), 15)]
        whole = LedgerUnit(_new_ledger)
        out_whole = [whole.apply(batch) for batch in batches]

        resumed = LedgerUnit(_new_ledger)
        out_resumed = []
        for batch in batches:
            if out_resumed and rng.random() < 0.3:
                snapshot = resumed.to_bytes()
                if rng.random() < 0.5:
                    assert resumed.to_bytes() == snapshot  # nothing changed in between
                resumed = LedgerUnit(_new_ledger, snapshot)
            elif out_resumed and rng.random() < 0.3:
                resumed.to_bytes()  # a snapshot the flow kept running after
            out_resumed.append(resumed.apply(batch))

        assert out_resumed == out_whole, f"seed {seed}"
        assert LedgerUnit(_new_ledger, resumed.to_bytes()).to_bytes() == whole.to_bytes(), f"seed {seed}"


def test_a_batch_gives_its_notes_then_one_stock_record() -> None:
    unit = LedgerUnit(_new_ledger)
    out = unit.apply(
        [
            StockMovement("SKU-1", "S1", Move.ON_HAND, 10, 1.0, "e1"),
            StockMovement("SKU-1", "S2", Move.ON_HAND, 2, 1.0, "e2"),  # enters low stock at S2: an alert
            StockMovement("SKU-1", "S1", Move.ON_HAND, -1, 2.0, "e3"),
        ]
    )
    assert [type(r).__name__ for r in out] == ["Alert", "SkuStock"]
    assert (out[1].version, [loc.on_hand for loc in out[1].locations]) == (3, [9, 2])

    redelivered = unit.apply([StockMovement("SKU-1", "S1", Move.ON_HAND, -1, 2.0, "e3")])
    assert redelivered == [] and unit.duplicates == 1  # a duplicate changes no stock: nothing to write


def test_a_snapshot_lets_the_ledger_go_until_the_sku_moves_again() -> None:
    unit = LedgerUnit(_new_ledger)
    unit.apply([StockMovement("SKU-1", "S1", Move.ON_HAND, 10, 1.0, "e1")])
    assert unit.decoded
    snapshot = unit.to_bytes()
    assert not unit.decoded and unit.to_bytes() is snapshot  # kept as bytes, not encoded again

    out = unit.apply([StockMovement("SKU-1", "S1", Move.ON_HAND, -4, 3.0, "e10")])  # decoded again
    assert [(s.sku, s.version, s.locations[0].on_hand) for s in out] == [("SKU-1", 2, 6)]
    assert unit.decoded and unit.to_bytes() != snapshot


def test_a_restored_unit_stays_bytes_until_its_sku_moves() -> None:
    unit = LedgerUnit(_new_ledger)
    unit.apply([StockMovement("SKU-1", "S1", Move.ON_HAND, 5, 1.0, "e1")])
    restored = LedgerUnit(_new_ledger, unit.to_bytes())
    assert not restored.decoded
    assert restored.to_bytes() == unit.to_bytes()  # a snapshot of an unmoved unit re-encodes nothing
