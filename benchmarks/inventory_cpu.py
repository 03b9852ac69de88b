"""Inventory flow CPU cost per event, this checkout against another, on a shared machine.

Wall-clock throughput swings with whatever else the machine runs; the CPU
time a process spends on a fixed stream does much less. Each round runs the
deployed `flows.inventory.build_flow` in a child process (the code of this
checkout, or of `--other DIR`), driven in process by Bytewax's testing source
over the simulator's inventory-flow stream and a testing sink (no broker, no
Redis: the flow's own work, decode to records, not the sink's writes), and
reads the CPU seconds the child spends in the flow run (`time.process_time`
around `run_main`: start-up and reading the stream aside). Variants alternate round by
round; the table shows events per CPU second and the ratio per round.

Run: `python benchmarks/inventory_cpu.py --other /path/to/other/checkout`;
results go to `benchmarks/results/inventory_cpu.json`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import orjson
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.inventory import workload_records

RESULTS = Path(__file__).resolve().parent / "results" / "inventory_cpu.json"
REPO = Path(__file__).resolve().parent.parent
console = Console()

# Run in the child, with the checkout under test first on its path.
_CHILD = """
import sys, time, msgspec
from bytewax.testing import TestingSink, TestingSource, run_main
from events.topics import Topic
from flows.inventory import build_flow
from flows.kafka_source import KafkaRecord
from omnistream.settings import Settings

settings = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", flow_metrics_port=0)
offsets = {}
records = []
for topic, value in msgspec.msgpack.decode(open(sys.argv[1], "rb").read()):
    offset = offsets.get(topic, 0)
    offsets[topic] = offset + 1
    records.append(KafkaRecord(settings.topic(Topic(topic)), 0, offset, value, None))
out = []
flow = build_flow(settings, "bench", source=TestingSource(records, batch_size=int(sys.argv[2])), sink=TestingSink(out))
started = time.process_time()
run_main(flow)
print(time.process_time() - started)
"""


def run_child(code: Path, stream: Path, batch_size: int) -> float:
    """CPU seconds (user + system, all threads) the child's flow spent on the stream, start-up and reading aside."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(stream), str(batch_size)], env=env, check=True,
                          capture_output=True, cwd=code)  # fmt: skip
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", type=Path, required=True, help="the checkout to compare with (e.g. main)")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    records = workload_records(args.events, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.msgpack"
        stream.write_bytes(msgspec.msgpack.encode([(topic.value, value) for topic, _, value in records]))
        variants = {"this": REPO, "other": args.other.resolve()}
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        for round_ in range(args.rounds):
            for name, code in variants.items():
                console.print(f"round {round_ + 1}, {name} ...")
                cpu[name].append(run_child(code, stream, args.batch_size))

    table = Table(title=f"Inventory flow, {len(records):,} events in process, events per CPU second")
    for column in ("round", "this", "other", "this / other"):
        table.add_column(column, justify="right")
    ratios = []
    for n, (mine, theirs) in enumerate(zip(cpu["this"], cpu["other"], strict=True), start=1):
        ratios.append(theirs / mine)
        table.add_row(str(n), f"{len(records) / mine:,.0f}", f"{len(records) / theirs:,.0f}", f"{theirs / mine:.3f}")
    console.print(table)
    median = statistics.median(ratios)
    console.print(f"median events per CPU second, this / other: {median:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps({
        "measured_at": datetime.now(UTC).isoformat(),
        "params": {k: str(v) for k, v in vars(args).items()},
        "events": len(records),
        "cpu_s": cpu,
        "events_per_cpu_s": {name: [len(records) / s for s in seconds] for name, seconds in cpu.items()},
        "median_ratio_this_over_other": median,
    }, option=orjson.OPT_INDENT_2))  # fmt: skip
    console.print(f"results: {args.out}")


if __name__ == "__main__":
    main()
