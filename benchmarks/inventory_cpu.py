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
import sys
import tempfile
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cpu_ab import CHILD_IMPORTS, CHILD_RECORDS, CHILD_RUN, compare
from benchmarks.inventory import workload_records

RESULTS = Path(__file__).resolve().parent / "results" / "inventory_cpu.json"

# Run in the child, with the checkout under test first on its path.
_CHILD = (
    CHILD_IMPORTS
    + """
from events.topics import Topic
from flows.inventory import build_flow

settings = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", flow_metrics_port=0)
"""
    + CHILD_RECORDS
)
_CHILD += CHILD_RUN


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
        compare(_CHILD, [str(stream), str(args.batch_size)], len(records), args, "Inventory flow")


if __name__ == "__main__":
    main()
