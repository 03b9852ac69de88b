"""A flow's CPU per event, this checkout against another, in alternating rounds: the shared half of the
`*_cpu.py` benchmarks.

Wall-clock throughput swings with whatever else a shared machine runs; the CPU time a process
spends on a fixed stream does much less. Each round runs a child Python process (the code of
this checkout, or of the other, first on its path) that builds the flow with a testing source
and sink, runs it over the stream file and prints the CPU seconds `run_main` took; variants
alternate round by round, and the ratio is taken pair by pair. The callers
(`benchmarks/inventory_cpu.py`, `benchmarks/demand_cpu.py`) give the child's code and the stream.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
console = Console()

CHILD_IMPORTS = """
import sys, time, msgspec
from bytewax.testing import TestingSink, TestingSource, run_main
from flows.kafka_source import KafkaRecord
from omnistream.settings import Settings
"""
"""What every child starts with; then its own `build_flow` import and `settings`, `CHILD_RECORDS`, then `CHILD_RUN`."""

CHILD_RECORDS = """
offsets = {}
records = []
for topic, value in msgspec.msgpack.decode(open(sys.argv[1], "rb").read()):
    offset = offsets.get(topic, 0)
    offsets[topic] = offset + 1
    records.append(KafkaRecord(settings.topic(Topic(topic)), 0, offset, value, None))
"""
"""The child's `records`: the stream file `sys.argv[1]` (msgpack of (topic, value) pairs), offsets per topic."""

CHILD_RUN = """
from flows.collector import tune_for_tailing_flow
tune_for_tailing_flow()  # the collector policy of a flow process (flows/run.py), that checkout's own
out = []
flow = build_flow(settings, "bench", source=TestingSource(records, batch_size=int(sys.argv[2])), sink=TestingSink(out))
started = time.process_time()
from datetime import timedelta
run_main(flow, epoch_interval=timedelta(seconds=settings.snapshot_interval_s))
print(time.process_time() - started)
"""
"""The child's timed part: `sys.argv[1]` is the stream file, `sys.argv[2]` the batch size. The collector is set as
in a flow process, after the stream is read, with each checkout's own policy. Epochs as long as a
deployed flow's (`snapshot_interval_s`, `flows/run.py`): Bytewax snapshots every step at each epoch's close, and
`run_main`'s own default (10 s) would charge a flow three times the snapshots it pays in service."""


def run_child(code: Path, child: str, args: list[str]) -> float:
    """CPU seconds (user + system, all threads) the child's flow spent, start-up and reading aside."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, "-c", child, *args], env=env, check=True, capture_output=True, cwd=code)
    return float(done.stdout.split()[-1])


def compare(child: str, child_args: list[str], events: int, args: argparse.Namespace, title: str) -> None:
    """Alternate this checkout and `args.other` for `args.rounds` rounds; print the table, write `args.out`."""
    variants = {"this": REPO, "other": args.other.resolve()}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        for name, code in variants.items():
            console.print(f"round {round_ + 1}, {name} ...")
            cpu[name].append(run_child(code, child, child_args))

    table = Table(title=f"{title}, {events:,} events in process, events per CPU second")
    for column in ("round", "this", "other", "this / other"):
        table.add_column(column, justify="right")
    ratios = []
    for n, (mine, theirs) in enumerate(zip(cpu["this"], cpu["other"], strict=True), start=1):
        ratios.append(theirs / mine)
        table.add_row(str(n), f"{events / mine:,.0f}", f"{events / theirs:,.0f}", f"{theirs / mine:.3f}")
    console.print(table)
    median = statistics.median(ratios)
    console.print(f"median events per CPU second, this / other: {median:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps({
        "measured_at": datetime.now(UTC).isoformat(),
        "params": {k: str(v) for k, v in vars(args).items()},
        "events": events,
        "cpu_s": cpu,
        "events_per_cpu_s": {name: [events / s for s in seconds] for name, seconds in cpu.items()},
        "median_ratio_this_over_other": median,
    }, option=orjson.OPT_INDENT_2))  # fmt: skip
    console.print(f"results: {args.out}")
