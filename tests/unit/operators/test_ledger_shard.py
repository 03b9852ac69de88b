"""`LedgerShard`: many SKUs' ledgers under one key, snapshotted without losing or staling anything."""

from __future__ import annotations

import random

from operators.ledger_shard import LedgerShard
from operators.movements import Move, StockMovement
from operators.stock_ledger import StockLedger
from tests.unit.operators.histories import random_movements


def _new_ledger(sku: str) -> StockLedger:
    return StockLedger(sku, low_stock_threshold=3)


def _final_stock(shard: LedgerShard) -> dict[str, object]:
    return {sku: shard._ledger(sku).stock() for sku in ("SKU-1", "SKU-2", "SKU-3", "SKU-4")}


def test_a_shard_snapshotted_and_restored_at_random_points_ends_like_the_uninterrupted_one() -> None:
    # Snapshots in the middle of the stream, each followed by more movements, so
    # that a kept ledger's bytes that were not refreshed after a change would be
    # restored stale and end differently.
    for seed in range(40):
        rng = random.Random(seed)
        moves = random_movements(rng, 200, ("SKU-1", "SKU-2", "SKU-3", "SKU-4"))
        batches = [moves[i : i + rng.randint(1, 15)] for i in range(0, len(moves), 15)]
        whole = LedgerShard(_new_ledger)
        out_whole = [whole.apply(batch) for batch in batches]

        resumed = LedgerShard(_new_ledger)
        out_resumed = []
        for batch in batches:
            if rng.random() < 0.3:
                snapshot = resumed.to_bytes()
                if rng.random() < 0.5:
                    assert resumed.to_bytes() == snapshot  # nothing changed in between
                resumed = LedgerShard.from_bytes(snapshot, _new_ledger)
            elif rng.random() < 0.3:
                resumed.to_bytes()  # a snapshot the flow kept running after
            out_resumed.append(resumed.apply(batch))

        assert _final_stock(resumed) == _final_stock(whole), f"seed {seed}"
        assert out_resumed == out_whole, f"seed {seed}"


def test_a_batch_gives_its_notes_then_one_stock_record_per_changed_sku() -> None:
    shard = LedgerShard(_new_ledger)
    out = shard.apply(
        [
            StockMovement("SKU-1", "S1", Move.ON_HAND, 10, 1.0, "e1"),
            StockMovement("SKU-2", "S1", Move.ON_HAND, 2, 1.0, "e2"),  # enters low stock: an alert
            StockMovement("SKU-1", "S1", Move.ON_HAND, -1, 2.0, "e3"),
        ]
    )
    assert [type(r).__name__ for r in out] == ["Alert", "SkuStock", "SkuStock"]
    assert [(r.sku, r.version, r.locations[0].on_hand) for r in out[1:]] == [("SKU-1", 2, 9), ("SKU-2", 1, 2)]

    redelivered = shard.apply([StockMovement("SKU-1", "S1", Move.ON_HAND, -1, 2.0, "e3")])
    assert redelivered == [] and shard.duplicates == 1  # a duplicate changes no stock: nothing to write


def test_a_restored_shard_keeps_every_sku_even_those_it_never_decodes() -> None:
    shard = LedgerShard(_new_ledger)
    shard.apply([StockMovement(f"SKU-{n}", "S1", Move.ON_HAND, n, 1.0, f"e{n}") for n in range(1, 6)])
    restored = LedgerShard.from_bytes(shard.to_bytes(), _new_ledger)
    restored.apply([StockMovement("SKU-1", "S1", Move.ON_HAND, 1, 2.0, "e9")])  # decodes SKU-1 only

    again = LedgerShard.from_bytes(restored.to_bytes(), _new_ledger)
    assert len(again) == 5
    assert [again._ledger(f"SKU-{n}").stock().locations[0].on_hand for n in range(1, 6)] == [2, 2, 3, 4, 5]


def test_ledgers_no_movement_reached_for_a_whole_epoch_are_kept_as_bytes_only() -> None:
    shard = LedgerShard(_new_ledger)
    shard.apply([StockMovement(f"SKU-{n}", "S1", Move.ON_HAND, 10, 1.0, f"e{n}") for n in range(1, 4)])
    shard.to_bytes()
    assert shard.decoded == 3  # all moved in the epoch just snapshotted
    shard.apply([StockMovement("SKU-1", "S1", Move.ON_HAND, -1, 2.0, "e9")])
    snapshot = shard.to_bytes()
    assert shard.decoded == 1  # SKU-2 and SKU-3 did not move since the previous snapshot

    out = shard.apply([StockMovement("SKU-2", "S1", Move.ON_HAND, -4, 3.0, "e10")])  # decoded again
    assert [(s.sku, s.version, s.locations[0].on_hand) for s in out] == [("SKU-2", 2, 6)]
    assert shard.to_bytes() != snapshot and len(shard) == 3
