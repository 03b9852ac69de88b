"""Garbage-collection policy benchmark: a flow in one process, CPython's defaults against the flow's.

docs/performance.md ("Garbage collection") quotes it. Each round runs a flow
over the same events (Bytewax `TestingSource`, batches of 1,000, a `TestingSink`:
no broker, no Redis) in a fresh process under each policy, alternating:
CPython's default collector thresholds; `thresholds_only`, the flows' rare
collections without freezing what survives them (the policy before 2026-12-07);
and `flows.collector.tune_for_tailing_flow()` as it is. The held events are
frozen out of the collector's walks in all, since no flow process holds its
input. A `gc.callbacks` hook times every collection.

`--flow inventory` (default) runs the inventory flow on simulator events, and so
does every other flow named (the simulator's events of the topics it reads);
`--flow demand` the demand flow on the stocked shop of `benchmarks/forecast.py`
(receipts, then orders and cancels: a week of order journals kept in three steps).

Run: `python benchmarks/collector.py [--flow F] [--events N] [--rounds R]`; results
go to `benchmarks/results/collector.json` (`collector_demand.json`) and a table is printed.
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

from flows.registry import FLOWS as FLOW_MODULES

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "collector.json"
POLICIES = ("cpython_default", "thresholds_only", "tailing_flow")
FLOWS = tuple(FLOW_MODULES)
"""Every flow of the registry: `demand` runs `benchmarks/forecast.py`'s stocked shop, the others the simulator."""


def simulator_run(flow: str, n_events: int) -> tuple[Any, list[Any]]:
    """The flow's builder and the first `n_events` simulator events of the topics it reads."""
    import importlib

    from flows.kafka_source import KafkaRecord
    from omnistream.settings import Settings
    from sim.workload import Workload

    module = importlib.import_module(FLOW_MODULES[flow])
    settings = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0")  # nothing connects
    wanted = set(module.INPUT_TOPICS)
    offsets: dict[str, int] = {}
    records: list[KafkaRecord] = []
    for record in Workload(seed=7).records(4 * n_events):
        if record.topic in wanted:
            topic = settings.topic(record.topic)
            offsets[topic] = offsets.get(topic, -1) + 1
            records.append(KafkaRecord(topic, 0, offsets[topic], record.value))
            if len(records) == n_events:
                break
    return lambda source, sink: module.build_flow(settings, "bench", source=source, sink=sink), records


def demand_run(n_events: int) -> tuple[Any, list[Any]]:
    """The demand flow's builder and the stocked shop's `n_events` events (`benchmarks/forecast.py`)."""
    from datetime import datetime

    import forecast  # this directory's benchmark: its synthetic stream and location

    from flows.demand import build_flow
    from omnistream.settings import Settings

    settings = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", recovery_dir="",
                        demand_locations=forecast.LOCATIONS, demand_shards=4)  # fmt: skip
    start = datetime(2011, 9, 5, tzinfo=forecast.LONDON).timestamp()
    records = list(forecast.synthetic_records(settings, n_events, 20_000, start, 2.0, stocked=True))
    return lambda source, sink: build_flow(settings, "bench", source=source, sink=sink), records


def run_once(flow: str, policy: str, n_events: int) -> dict[str, Any]:
    """One flow run under `policy`, in this process: rate, CPU and every collection's generation and pause."""
    from bytewax.testing import TestingSink, TestingSource, run_main

    from flows.collector import OLDER_THRESHOLDS, YOUNG_THRESHOLD, tune_for_tailing_flow

    build, records = demand_run(n_events) if flow == "demand" else simulator_run(flow, n_events)
    gc.collect()
    if policy == "tailing_flow":
        tune_for_tailing_flow()
    elif policy == "thresholds_only":
        gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
        gc.freeze()
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
    run_main(build(TestingSource(records, batch_size=1000), TestingSink(out)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    gc.callbacks.remove(on_gc)
    return {
        "flow": flow,
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
    parser.add_argument("--flow", choices=FLOWS, default="inventory")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", choices=POLICIES, help=argparse.SUPPRESS)  # a round's child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_once(args.flow, args.one, args.events)))
        return
    out = args.out or (RESULTS if args.flow == "inventory" else RESULTS.with_name(f"collector_{args.flow}.json"))
    console = Console(width=140)
    runs: dict[str, list[dict[str, Any]]] = {policy: [] for policy in POLICIES}
    for round_ in range(args.rounds):
        for policy in POLICIES if round_ % 2 == 0 else POLICIES[::-1]:
            console.print(f"round {round_ + 1}, {policy} ...")
            child = subprocess.run(
                [sys.executable, __file__, "--one", policy, "--flow", args.flow, "--events", str(args.events)],
                cwd=ROOT, check=True, capture_output=True, text=True,
            )  # fmt: skip
            runs[policy].append(json.loads(child.stdout.strip().splitlines()[-1]))
    title = f"The {args.flow} flow in one process, {args.events:,} events, {args.rounds} rounds (median, range)"
    table = Table(title=title)
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
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"results: {out}")


if __name__ == "__main__":
    main()
