"""The pipelined sink's two promises: Bytewax drains it at each epoch's end, and it is chosen only for one worker.

`flows.sinks.PipelinedRecordSink` writes a batch while the flow works on the
next and relies on Bytewax calling a stateful sink partition's `snapshot`
after the epoch's writes and before the epoch is committed; these tests hold
Bytewax (community-maintained since 0.21.1) to the first half of that, with
no broker and no Redis.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource, run_main

from flows.sinks import PipelinedRecordSink, RecordSink, output_records, record_sink
from omnistream.settings import Settings

SETTINGS = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0")


class _Journal(StatefulSinkPartition[int, None]):
    def __init__(self, calls: list[tuple[str, int]]) -> None:
        self.calls = calls

    def write_batch(self, values: list[int]) -> None:
        self.calls.extend(("write", value) for value in values)

    def snapshot(self) -> None:
        self.calls.append(("snapshot", 0))

    def close(self) -> None:
        self.calls.append(("close", 0))


class _JournalSink(FixedPartitionedSink[int, None]):
    """Records the calls Bytewax makes on one partition, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def list_parts(self) -> list[str]:
        return ["writer"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Journal:
        return _Journal(self.calls)


def test_bytewax_snapshots_a_partition_after_each_epochs_writes(tmp_path: Path) -> None:
    init_db_dir(tmp_path, 1)
    sink = _JournalSink()
    flow = Dataflow("pipelined_sink_contract")
    numbers = op.input("in", flow, TestingSource(list(range(6)), batch_size=2))
    output_records("out", numbers, sink)  # type: ignore[arg-type]
    run_main(flow, epoch_interval=timedelta(0), recovery_config=RecoveryConfig(str(tmp_path)))
    writes = [value for kind, value in sink.calls if kind == "write"]
    assert writes == list(range(6))
    # Every write is followed by a snapshot before the partition closes: the sink is drained
    # at an epoch's end, so no epoch can be committed with one of its writes in flight.
    last_write = max(i for i, (kind, _) in enumerate(sink.calls) if kind == "write")
    assert ("snapshot", 0) in sink.calls[last_write + 1 :]
    assert sum(kind == "snapshot" for kind, _ in sink.calls) >= 2, sink.calls


def test_one_worker_pipelines_its_writes() -> None:
    assert isinstance(record_sink("inventory", SETTINGS), PipelinedRecordSink)


def test_a_cluster_or_the_setting_off_writes_in_each_batch() -> None:
    two_processes = SETTINGS.model_copy(update={"processes": 2})
    two_workers = SETTINGS.model_copy(update={"workers": 2})
    off = Settings(kafka_brokers="127.0.0.1:9", redis_url="redis://127.0.0.1:9/0", flow_pipelined_sink=False)
    for settings in (two_processes, two_workers, off):
        assert type(record_sink("inventory", settings)) is RecordSink
