"""Garbage-collection policy benchmark: the inventory flow in one process, CPython's defaults against the flow's.

docs/performance.md ("Garbage collection") quotes it. Each round runs the
inventory flow over the same simulator events (Bytewax `TestingSource`, batches
of 1,000, a `TestingSink`: no broker, no Redis) in a fresh process, once with
CPython's default collector thresholds and once after
`flows.collector.tune_for_tailing_flow()`, alternating. The held events are
frozen out of the collector's walks in both, since no flow process holds its
input. A `gc.callbacks` hook times every collection.

Run: `python benchmarks/collector.py [--events N] [--rounds R]`; results go to
`benchmarks/results/collector.json` and a table is printed.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "collector.json"
POLICIES = ("cpython_default", "tailing_flow")


def run_once(policy: str, n_events: int) -> dict[str, Any]:
    """One flow run under `policy`, in this process: rate, CPU and every collection's generation and pause."""
    from bytewax.testing import TestingSink, TestingSource, run_main

    from events.topics import Topic
    from flows.collector import tune_for_tailing_flow
    from flows.inventory import build_flow
    from flows.kafka_source import KafkaRecord
    from omnistream.settings import Settings
    from sim.workload import Workload

    settings = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0")  # nothing connects
    wanted = {Topic.INVENTORY, Topic.POS, Topic.CLICKSTREAM}
    offsets: dict[str, int] = {}
    records: list[KafkaRecord] = []
    for record in Workload(seed=7).records(3 * n_events):
        if record.topic in wanted:
            topic = settings.topic(record.topic)
            offsets[topic] = offsets.get(topic, -1) + 1
            records.append(KafkaRecord(topic, 0, offsets[topic], record.value))
            if len(records) == n_events:
                break
    gc.collect()
    if policy == "tailing_flow":
        tune_for_tailing_flow()
    else:
        gc.freeze()  # the held events only: the flow's own objects stay under CPython's defaults
    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], time.perf_counter() - started[0]))

    gc.callbacks.append(on_gc)
    out: list[Any] = []
    cpu, wall = time.process_time(), time.perf_counter()
    run_main(build_flow(settings, "bench", source=TestingSource(records, batch_size=1000), sink=TestingSink(out)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    gc.callbacks.remove(on_gc)
    return {
        "policy": policy,
        "events": len(records),
        "events_per_s": len(records) / wall,
        "cpu_s": cpu,
        "collections_by_generation": [sum(1 for g, _ in pauses if g == k) for k in range(3)],
        "collecting_ms": 1000 * sum(p for _, p in pauses),
        "longest_pause_ms": 1000 * max((p for _, p in pauses), default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--one", choices=POLICIES, help=argparse.SUPPRESS)  # a round's child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_once(args.one, args.events)))
        return
    console = Console(width=140)
    runs: dict[str, list[dict[str, Any]]] = {policy: [] for policy in POLICIES}
    for round_ in range(args.rounds):
        for policy in POLICIES if round_ % 2 == 0 else POLICIES[::-1]:
            console.print(f"round {round_ + 1}, {policy} ...")
            child = subprocess.run(
                [sys.executable, __file__, "--one", policy, "--events", str(args.events)],
                cwd=ROOT, check=True, capture_output=True, text=True,
            )  # fmt: skip
            runs[policy].append(json.loads(child.stdout.strip().splitlines()[-1]))
    table = Table(title=f"Inventory flow in one process, {args.events:,} events, {args.rounds} rounds (median, range)")
    for column in ("policy", "events/s", "CPU s", "collections (gen 0/1/2)", "collecting ms", "longest pause ms"):
        table.add_column(column, justify="left" if column == "policy" else "right")

    def spread(policy: str, field: str, fmt: str) -> str:
        values = [run[field] for run in runs[policy]]
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"

    for policy in POLICIES:
        counts = "/".join(str(n) for n in runs[policy][0]["collections_by_generation"])
        table.add_row(policy, spread(policy, "events_per_s", ",.0f"), spread(policy, "cpu_s", ".2f"), counts,
                      spread(policy, "collecting_ms", ".0f"), spread(policy, "longest_pause_ms", ".1f"))  # fmt: skip
    console.print(table)
    result = {"benchmark": "collector", "command": "python benchmarks/collector.py " + " ".join(sys.argv[1:]),
              "when": datetime.now(UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
              "runs": runs}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"results: {args.out}")


if __name__ == "__main__":
    main()
