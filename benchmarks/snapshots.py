"""Snapshot benchmark: an epoch's snapshot cost with 10k, 100k and 1M SKU x location keys held, same change rate.

The inventory flow itself (`flows.inventory.build_flow`, its ledger step, Bytewax
recovery on a local SQLite partition) runs in this process, fed by a source that
first stocks every SKU x location (the keys held; 10 locations per SKU), then
emits the same number of stock movements per epoch, one batch per epoch, on the
same number of distinct SKUs (4 movements each) drawn at random from all those
held. The sink drops what the flow writes: this measures snapshots, not Redis. Per change epoch it reports:

- the time the ledger step spends producing its snapshots (`_LedgerStep.snapshot`,
  the encoding the flow pauses for), summed over the keys snapshotted: CPU time of
  the calls (what the code costs; the headline), and wall time (with whatever the
  shared machine and the garbage collector added);
- the bytes Bytewax wrote to the recovery store for the ledger step in that epoch
  (`snaps` rows of the partition), and how many keys it snapshotted;
- the bytes the snapshots returned (what Bytewax pickles into the store).

The end of the input makes Bytewax snapshot every key once; that is reported apart.

Run: `python benchmarks/snapshots.py` (`--quick` for 10k and 100k only); results go
to `benchmarks/results/snapshots.json` and a table is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from bytewax.recovery import RecoveryConfig
from bytewax.testing import run_main
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.epoch_feed import DropSink, EpochFeed, OneFeed
from events.topics import Topic
from flows import inventory
from flows.collector import tune_for_tailing_flow
from omnistream.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "snapshots.json"
LOCATIONS = 10
MOVES_PER_SKU = 4
EPOCH_S = 1.0
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC).timestamp()
SETTINGS = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0")
TOPIC = SETTINGS.topic(Topic.INVENTORY)


def _receipt(n: int, sku: int, location: int, qty: int, at_s: float) -> bytes:
    ts = datetime.fromtimestamp(T0 + at_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return orjson.dumps({"event_id": f"e{n}", "type": "receipt", "ts": ts, "schema_version": 1,
                         "sku": f"SKU-{sku:07d}", "location_id": f"L{location:02d}", "qty": qty})  # fmt: skip


def _fill(skus: int) -> Iterator[list[bytes]]:
    """Every key stocked, in chunks of 20k movements."""
    n_keys = skus * LOCATIONS
    for first in range(0, n_keys, 20_000):
        yield [
            _receipt(key, key // LOCATIONS, key % LOCATIONS, 50, 0.0)
            for key in range(first, min(first + 20_000, n_keys))
        ]


def _changes(skus: int, changes: int) -> Callable[[int], list[bytes]]:
    """Epoch n's movements: the same change rate whatever the size, `changes` on `changes / MOVES_PER_SKU` SKUs."""
    rng = random.Random(7)

    def batch(n: int) -> list[bytes]:
        out: list[bytes] = []
        for sku in rng.sample(range(skus), changes // MOVES_PER_SKU):
            for _ in range(MOVES_PER_SKU):
                location, qty = rng.randrange(LOCATIONS), rng.randint(-3, 3) or 1
                out.append(_receipt(10_000_000 * n + len(out), sku, location, qty, n))
        return out

    return batch


def run_one(keys_held: int, changes: int, epochs: int) -> dict[str, Any]:
    """Load `keys_held` keys, then `epochs` epochs of `changes` movements; per-epoch snapshot figures."""
    rounds: dict[int, dict[str, float]] = {}
    current = [0]

    def on_change_batch(index: int) -> None:
        current[0] = index
        rounds[index] = {"snapshot_s": 0.0, "cpu_s": 0.0, "bytes": 0, "keys": 0, "started": time.perf_counter(),
                         "last": 0.0}  # fmt: skip

    original = inventory._LedgerStep.snapshot

    def timed(step: Any) -> bytes:
        started, cpu = time.perf_counter(), time.thread_time()
        data = original(step)
        held = rounds.get(current[0])
        if held is not None:
            held["snapshot_s"] += time.perf_counter() - started
            held["cpu_s"] += time.thread_time() - cpu
            held["bytes"] += len(data)
            held["keys"] += 1
            held["last"] = time.perf_counter()
        return data

    inventory._LedgerStep.snapshot = timed  # type: ignore[method-assign,assignment]
    try:
        with tempfile.TemporaryDirectory(prefix="omnistream-snapbench-") as scratch:
            subprocess.run([sys.executable, "-m", "bytewax.recovery", scratch, "1"], check=True)
            skus = keys_held // LOCATIONS
            feed = EpochFeed(TOPIC, _fill(skus), _changes(skus, changes), epochs, on_change_batch,
                             settle_s=2.5 * EPOCH_S, gap_s=1.5 * EPOCH_S)  # fmt: skip
            flow = inventory.build_flow(SETTINGS, "bench", source=OneFeed(feed), sink=DropSink())
            started = time.perf_counter()
            # Old snapshots kept for an hour, so the store shows what each epoch wrote.
            recovery = RecoveryConfig(Path(scratch), backup_interval=timedelta(hours=1))
            run_main(flow, epoch_interval=timedelta(seconds=EPOCH_S), recovery_config=recovery)
            total_s = time.perf_counter() - started
            db = sqlite3.connect(Path(scratch) / "part-0.sqlite3")
            per_epoch = db.execute(
                "SELECT snap_epoch, COUNT(*), SUM(LENGTH(ser_change)) FROM snaps WHERE step_id LIKE '%ledgers' "
                "GROUP BY snap_epoch ORDER BY snap_epoch"
            ).fetchall()
            db.close()
    finally:
        inventory._LedgerStep.snapshot = original  # type: ignore[method-assign]
    # The store's last snapshotting epoch is the end of the input (every key); the `epochs` before it are
    # the change epochs (the epochs between them snapshot nothing).
    change_epochs = per_epoch[-(epochs + 1) : -1]
    measured = [rounds[i] for i in sorted(rounds) if i <= epochs]
    closing = rounds.get(epochs + 1, {"keys": 0, "snapshot_s": 0.0})
    return {
        "keys_held": keys_held,
        "skus_held": keys_held // LOCATIONS,
        "changes_per_epoch": changes,
        "epochs": epochs,
        "run_s": round(total_s, 1),
        "snapshot_ms_per_epoch": [round(r["snapshot_s"] * 1000, 2) for r in measured],
        "snapshot_cpu_ms_per_epoch": [round(r["cpu_s"] * 1000, 2) for r in measured],
        "snapshot_bytes_per_epoch": [int(r["bytes"]) for r in measured],
        "end_of_input_snapshot": {"keys": int(closing["keys"]), "ms": round(closing["snapshot_s"] * 1000, 1)},
        "keys_snapshotted_per_epoch": [int(r["keys"]) for r in measured],
        "epoch_to_last_snapshot_ms": [round((r["last"] - r["started"]) * 1000, 1) for r in measured if r["last"]],
        "store_keys_per_epoch": [int(n) for _, n, _ in change_epochs],
        "store_bytes_per_epoch": [int(b or 0) for _, _, b in change_epochs],
    }


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="10k and 100k keys only")
    parser.add_argument("--changes", type=int, default=2_000, help="movements per epoch (4 per SKU moved)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else args.keys
    tune_for_tailing_flow()  # as every flow process does (flows/run.py)

    runs = [run_one(keys, args.changes, args.epochs) for keys in sizes]
    base = runs[0]
    table = Table(title=f"Inventory flow: one epoch's snapshot, {args.changes} movements per epoch")
    for column in ("keys held", "snapshot CPU ms", "snapshot wall ms", "keys snapshotted", "bytes written",
                   "CPU vs smallest", "bytes vs smallest"):  # fmt: skip
        table.add_column(column, justify="right")
    for run in runs:
        run["snapshot_cpu_ms_median"] = round(_median(run["snapshot_cpu_ms_per_epoch"]), 2)
        run["snapshot_ms_median"] = round(_median(run["snapshot_ms_per_epoch"]), 2)
        run["store_bytes_median"] = int(_median(run["store_bytes_per_epoch"]))
        run["cpu_ratio_to_smallest"] = round(
            run["snapshot_cpu_ms_median"] / max(1e-9, _median(base["snapshot_cpu_ms_per_epoch"])), 2
        )
        run["bytes_ratio_to_smallest"] = round(
            run["store_bytes_median"] / max(1, _median(base["store_bytes_per_epoch"])), 2
        )
        table.add_row(f"{run['keys_held']:,}", f"{run['snapshot_cpu_ms_median']:.1f}",
                      f"{run['snapshot_ms_median']:.1f}", f"{int(_median(run['keys_snapshotted_per_epoch']))}",
                      f"{run['store_bytes_median']:,}",
                      f"{run['cpu_ratio_to_smallest']:.2f}x", f"{run['bytes_ratio_to_smallest']:.2f}x")  # fmt: skip
    Console(width=170).print(table)
    result = {
        "benchmark": "snapshots",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "command": "python benchmarks/snapshots.py " + " ".join(sys.argv[1:]),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
