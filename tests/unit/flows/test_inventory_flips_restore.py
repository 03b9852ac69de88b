"""Sellable flips across a restore: the same flips as a run never stopped, none announced twice, none missed.

The flips are worked out beside each SKU's ledger and have no snapshot of their own: a restored
step learns what was last announced from the restored ledger (`flows.inventory._LedgerStep`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bytewax.recovery import RecoveryConfig
from bytewax.testing import TestingSink, TestingSource, run_main

from events.availability import AvailabilityChange
from flows.inventory import build_flow
from flows.kafka_source import KafkaRecord
from flows.launcher import ensure_recovery
from flows.registry import STATE_FORMATS
from flows.sinks import FlowRecord
from sim.workload import Workload
from tests.unit.flows.test_inventory_golden import SETTINGS, flow_records


def _flips(records: list[FlowRecord]) -> list[tuple[str, str, bool, int]]:
    return [(r.sku, r.location_id, r.sellable, r.available) for r in records if type(r) is AvailabilityChange]


def test_a_restored_flow_announces_the_flips_of_a_run_never_stopped(tmp_path: Path) -> None:
    records = flow_records(Workload(seed=11, n_skus=60, n_stores=3, n_warehouses=1), 12_000)
    whole: list[FlowRecord] = []
    run_main(build_flow(SETTINGS, "g", source=TestingSource(records, batch_size=50), sink=TestingSink(whole)))
    expected = _flips(whole)
    assert len(expected) > 100 and any(not f[2] for f in expected) and any(f[2] for f in expected)

    ensure_recovery(tmp_path, 1, STATE_FORMATS["inventory"])
    recovery = RecoveryConfig(tmp_path)
    first: list[FlowRecord] = []
    # An EOF item ends the first run after 6,000 records, its state snapshotted at the end of its last epoch.
    items: list[Any] = [*records[:6_000], TestingSource.EOF(), *records[6_000:]]
    source: TestingSource[KafkaRecord] = TestingSource(items, batch_size=50)
    run_main(build_flow(SETTINGS, "g", source=source, sink=TestingSink(first)),
             epoch_interval=timedelta(seconds=0), recovery_config=recovery)  # fmt: skip
    second: list[FlowRecord] = []
    run_main(build_flow(SETTINGS, "g", source=source, sink=TestingSink(second)),
             epoch_interval=timedelta(seconds=0), recovery_config=recovery)  # fmt: skip
    assert second, "the second run resumed and read the rest"
    assert _flips(first) + _flips(second) == expected
