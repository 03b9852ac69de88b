"""One simulated stream, generated once per test session and shared by the simulator's tests.

The workload is small (300 SKUs) but slow in event time (5 events/s), so that
~25k records span over an hour: orders get picked, transfers arrive, labels
come back, and every kind of disorder has time to happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from sim.record import SimRecord
from sim.workload import Workload

PARAMS: dict[str, Any] = dict(
    seed=11,
    n_skus=300,
    n_stores=5,
    n_warehouses=2,
    n_users=1500,
    events_per_s=5.0,
    duplicate_rate=0.02,
    malformed_rate=0.01,
    customer_journey_rate=0.02,
    consent_rate=0.005,
)
N_RECORDS = 25_000


@dataclass
class Stream:
    """The records, the workload's counters after yielding them, and each valid record parsed."""

    workload: Workload
    records: list[SimRecord]
    valid: list[tuple[SimRecord, dict[str, Any]]]  # every record that is not malformed, with its JSON

    def of_type(self, event_type: str, *, duplicates: bool = False) -> list[dict[str, Any]]:
        return [e for r, e in self.valid if e["type"] == event_type and (duplicates or not r.duplicate)]


@pytest.fixture(scope="session")
def stream() -> Stream:
    workload = Workload(**PARAMS)
    records = list(workload.records(N_RECORDS))
    valid = [(r, orjson.loads(r.value)) for r in records if not r.malformed]
    return Stream(workload, records, valid)
