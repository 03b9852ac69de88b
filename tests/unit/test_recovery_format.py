"""Recovery state is tied to the layout of the flow's snapshots: another layout is refused, never misread."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.launcher import IncompatibleRecovery, ensure_recovery
from flows.registry import FLOWS, STATE_FORMATS


def test_fresh_partitions_record_their_layout_and_a_restart_with_it_keeps_the_lineage(tmp_path: Path) -> None:
    generation = ensure_recovery(tmp_path, 1, state_format=2)
    assert (tmp_path / "state-format").read_text().strip() == "2"
    assert ensure_recovery(tmp_path, 1, state_format=2) == generation


def test_partitions_of_another_layout_stop_start_up_with_what_to_do(tmp_path: Path) -> None:
    ensure_recovery(tmp_path, 1, state_format=2)
    with pytest.raises(IncompatibleRecovery) as refused:
        ensure_recovery(tmp_path, 1, state_format=3)
    message = str(refused.value)
    assert "layout 2" in message and "writes 3" in message and str(tmp_path) in message


def test_partitions_from_before_layouts_were_recorded_count_as_layout_1(tmp_path: Path) -> None:
    ensure_recovery(tmp_path, 1)
    (tmp_path / "state-format").unlink()  # as an older release left them
    assert ensure_recovery(tmp_path, 1, state_format=1)
    with pytest.raises(IncompatibleRecovery):
        ensure_recovery(tmp_path, 1, state_format=STATE_FORMATS["inventory"])


def test_every_flow_names_its_snapshot_layout() -> None:
    assert set(STATE_FORMATS) == set(FLOWS)
