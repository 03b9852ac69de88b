"""The inventory flow's output on a simulator stream equals the one recorded before its ledger path was made cheaper.

`inventory_golden.json` was written by `python -m tests.unit.flows.test_inventory_golden` on the code before that
change (commit b7ba0e3; re-recorded per type, on the code before the sellable flips joined the ledger step, with
the same outcome): per batch size, the number of output records of each type and, per type, a digest of its records
in output order (stock records, alerts, dead letters, order lines, holds, sellable flips; a dead letter's wall-clock
`ts` aside). Any change to what the flow writes fails here; re-record only for an intended change of behaviour, and say
so in the commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import orjson
from bytewax.testing import TestingSink, TestingSource, run_main

from benchmarks.inventory import FLOW_TOPICS
from events.dead_letter import DeadLetter
from flows.inventory import build_flow
from flows.kafka_source import KafkaRecord
from flows.sinks import FlowRecord
from omnistream.settings import Settings
from sim.workload import Workload

GOLDEN = Path(__file__).with_name("inventory_golden.json")
# No broker and no Redis listen here: a flow that tried to connect would fail.
SETTINGS = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", flow_metrics_port=0)
# (events, batch size): a long stream in the flow's usual batches, a shorter one in small ones.
RUNS = ((100_000, 1_000), (20_000, 7))


def flow_records(workload: Workload, events: int) -> list[KafkaRecord]:
    """The first `events` of the workload's records on the inventory flow's topics, as its Kafka source reads them."""
    offsets: dict[str, int] = {}
    records: list[KafkaRecord] = []
    for record in workload.records():
        if record.topic not in FLOW_TOPICS:
            continue
        if len(records) == events:
            break
        name = SETTINGS.topic(record.topic)
        offset = offsets[name] = offsets.get(name, -1) + 1
        records.append(KafkaRecord(name, 0, offset, record.value, None))
    return records


def outputs(events: int, batch_size: int) -> dict[str, Any]:
    """What the flow writes for the first `events` simulator events, read `batch_size` records at a time."""
    # A small shop, so the stream is mostly trade rather than the opening stock of every SKU and location.
    records = flow_records(Workload(seed=7, n_skus=300, n_stores=4, n_warehouses=2), events)
    out: list[FlowRecord] = []
    run_main(
        build_flow(SETTINGS, "golden", source=TestingSource(records, batch_size=batch_size), sink=TestingSink(out))
    )
    # One digest per record type, each in output order: the order between types is not the flow's to keep
    # (the sellable flips came from a step of their own until they were worked out beside the ledger).
    digests: dict[str, Any] = {}
    kinds = Counter[str]()
    for item in out:
        if isinstance(item, DeadLetter):
            item = dataclasses.replace(item, ts="")  # when it was written (wall clock), not what
        kind = type(item).__name__
        kinds[kind] += 1
        digest = digests.get(kind)
        if digest is None:
            digest = digests[kind] = hashlib.sha256()
        digest.update(msgspec.json.encode(msgspec.to_builtins(item)))
    return {"records": dict(sorted(kinds.items())), "digests": {k: d.hexdigest() for k, d in sorted(digests.items())}}


def test_the_simulator_stream_gives_the_recorded_outputs() -> None:
    golden = orjson.loads(GOLDEN.read_bytes())
    for events, batch_size in RUNS:
        expected = golden[f"{events}/{batch_size}"]
        # Every kind of record the ledger path writes is exercised.
        assert {"SkuStock", "Alert", "DeadLetter", "OrderLineState", "ReservationState", "AvailabilityChange"} <= set(
            expected["records"]
        )
        assert outputs(events, batch_size) == expected


if __name__ == "__main__":
    GOLDEN.write_bytes(orjson.dumps({f"{e}/{b}": outputs(e, b) for e, b in RUNS}, option=orjson.OPT_INDENT_2))
