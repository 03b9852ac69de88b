"""Demand flow CPU cost per event on a stocked shop, this checkout against another, on a shared machine.

The demand flow's counterpart of `benchmarks/inventory_cpu.py` (same method): the stream is
`benchmarks/forecast.py`'s stocked one (`synthetic_records(..., stocked=True)`: every SKU received
first, replenishments and whole-order cancels among the orders), so the reorders step keeps its copy
of the stock ledgers and order books on every order line; the sink is a testing sink (no Redis), so
the figure is the flow's own work, not the sink's writes. `benchmarks/forecast.py --throughput N
--stocked` measures the same stream with the Redis sink.

Run: `python benchmarks/demand_cpu.py --other /path/to/other/checkout`;
results go to `benchmarks/results/demand_cpu.json`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.cpu_ab import CHILD_IMPORTS, CHILD_RUN, compare
from benchmarks.forecast import LOCATIONS, LONDON, synthetic_records
from omnistream.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results" / "demand_cpu.json"

# Run in the child, with the checkout under test first on its path.
_CHILD = (
    CHILD_IMPORTS
    + """
from flows.demand import build_flow

settings = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", flow_metrics_port=0,
                    demand_locations=sys.argv[3], demand_shards=4, recovery_dir="")
records = [KafkaRecord(*fields) for fields in msgspec.msgpack.decode(open(sys.argv[1], "rb").read())]
"""
)
_CHILD += CHILD_RUN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", type=Path, required=True, help="the checkout to compare with (e.g. main)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=Settings().kafka.batch_size)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    start = datetime(2011, 9, 5, tzinfo=LONDON).timestamp()
    settings = Settings(demand_locations=LOCATIONS)
    records = list(synthetic_records(settings, args.events, 20_000, start, 2.0, stocked=True))
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "stream.msgpack"
        stream.write_bytes(msgspec.msgpack.encode([tuple(record) for record in records]))
        compare(_CHILD, [str(stream), str(args.batch_size), LOCATIONS], len(records), args, "Demand flow, stocked shop")


if __name__ == "__main__":
    main()
