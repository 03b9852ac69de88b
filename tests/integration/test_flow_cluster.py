"""The Kubernetes container command, run here as a 2- and a 4-process cluster: the same state as one process.

Each process is what a StatefulSet pod runs (`deploy/k8s/base/inventory-flow.yaml`):
`python -m flows.run inventory` with the cluster's address template, its own
process id (a pod's ordinal) and a recovery directory of its own (a pod's
volume). Loopback addresses 127.1.0.<i> stand in for the pods' DNS names.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from flows.launcher import RecoveryRows, recovery_rows, resume_epoch_of, settings_env
from omnistream.settings import Settings
from omnistream.stack import free_port
from sim.workload import Workload
from tests.harness.flows import publish, run_to_end, stock_hashes

pytestmark = pytest.mark.integration

PLANNED_MAX_PROCESSES = 4
"""Recovery partitions are sized for the largest cluster planned, as in the manifests."""


def start_members(
    settings: Settings, processes: int, recovery_root: Path, generation: str
) -> list[subprocess.Popen[bytes]]:
    """`processes` copies of the pod command, differing only by process id and volume, as pods do."""
    port = free_port()
    cluster = settings.model_copy(
        update={
            "processes": processes,
            "recovery_partitions": PLANNED_MAX_PROCESSES,
            "flow_stop_at_end": True,
            "cluster_address_template": f"127.1.0.{{i}}:{port}",
            "cluster_generation": generation,
        }
    )
    members = []
    for index in range(processes):
        env = {**os.environ, **settings_env(cluster)}
        env["OMNISTREAM_CLUSTER_PROCESS_ID"] = str(index)
        env["OMNISTREAM_RECOVERY_DIR"] = str(recovery_root / f"member-{index}")
        members.append(subprocess.Popen([sys.executable, "-m", "flows.run", "inventory"], env=env))
    return members


def wait_all(members: list[subprocess.Popen[bytes]], timeout_s: float = 300.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    return [member.wait(max(0.1, deadline - time.monotonic())) for member in members]


def _other_db(settings: Settings, db: int) -> Settings:
    url = settings.redis.url.rsplit("/", 1)[0] + f"/{db}"
    redis.Redis.from_url(url).flushdb()
    return settings.model_copy(update={"redis_url": url})


@pytest.mark.parametrize("processes", [2, 4])
def test_pod_command_as_a_cluster_matches_one_process(settings: Settings, tmp_path: Path, processes: int) -> None:
    workload = Workload(seed=31, n_skus=300, n_stores=6, n_warehouses=2, n_users=400, hold_share=0.0)
    publish(settings, ((r.topic, r.key, r.value) for r in workload.records(12_000)))
    run_to_end(settings)
    expected = stock_hashes(settings.redis.url)
    assert len(expected) > 250

    clustered = _other_db(settings, 3)
    members = start_members(clustered, processes, tmp_path, generation=f"k8s-{processes}")
    assert wait_all(members) == [0] * processes

    actual = stock_hashes(clustered.redis.url)
    assert actual.keys() == expected.keys()
    differing = [k for k in expected if actual[k] != expected[k]]
    assert not differing, f"{len(differing)} keys differ between 1 and {processes} processes, e.g. {differing[:3]}"
    # Each member kept its own share of the partitions, dealt by ordinal, on its own volume.
    for index in range(processes):
        held = sorted(p.name for p in (tmp_path / f"member-{index}" / "inventory").glob("part-*.sqlite3"))
        wanted = sorted(f"part-{p}.sqlite3" for p in range(PLANNED_MAX_PROCESSES) if p % processes == index)
        assert held == wanted


def test_a_cluster_rescaled_from_2_to_4_processes_resumes_where_it_stopped(settings: Settings, tmp_path: Path) -> None:
    """The procedure of docs/scaleout.md: stop, deal the partition files out again by `p % 4`, start 4 members."""
    workload = Workload(seed=32, n_skus=300, n_stores=6, n_warehouses=2, n_users=400, hold_share=0.0)
    records = list(workload.records(12_000))
    publish(settings, ((r.topic, r.key, r.value) for r in records[:6_000]))
    clustered = _other_db(settings, 4)
    before = tmp_path / "two"
    assert wait_all(start_members(clustered, 2, before, generation="rescale")) == [0, 0]
    halfway = stock_hashes(clustered.redis.url)

    after = tmp_path / "four"
    for index in range(4):
        target = after / f"member-{index}" / "inventory"
        target.mkdir(parents=True)
        for source in before.glob("member-*/inventory"):
            for name in ("generation", "state-format"):
                shutil.copy(source / name, target / name)
            for part in source.glob("part-*.sqlite3"):
                if int(part.stem.split("-")[1]) % 4 == index:
                    shutil.copy(part, target / part.name)
    publish(settings, ((r.topic, r.key, r.value) for r in records[6_000:]))
    assert wait_all(start_members(clustered, 4, after, generation="rescale")) == [0] * 4

    run_to_end(settings)  # one process over the whole log, from scratch
    expected = stock_hashes(settings.redis.url)
    actual = stock_hashes(clustered.redis.url)
    assert halfway != actual  # the second half moved stock on
    assert actual.keys() == expected.keys()
    differing = [k for k in expected if actual[k] != expected[k]]
    assert not differing, f"{len(differing)} keys differ after rescaling 2 -> 4, e.g. {differing[:3]}"
    # It resumed (not a replay from the start, which would end the same): the partitions record the first
    # execution (2 workers, from epoch 0) and the second, on 4 workers, resumed past the first one's epochs.
    executions = set()
    for part in after.glob("member-*/inventory/part-*.sqlite3"):
        with sqlite3.connect(part) as db:
            executions |= set(db.execute("SELECT ex_num, worker_count, resume_epoch > 1 FROM exs").fetchall())
    assert (1, 4, 1) in executions and executions <= {(0, 2, 0), (1, 4, 1)}, executions


def test_members_delete_what_a_killed_run_left_past_the_resume_epoch_of_the_whole_cluster(
    settings: Settings, tmp_path: Path
) -> None:
    """Each member holds a share of the partitions, Bytewax's bookkeeping rows are spread over all of them:
    the members agree on the resume epoch in Redis (`flows.cluster_member.agree_on_resume_epoch`) and each
    deletes its snapshots past it, as `flows.launcher.start_flow` does on one host."""
    workload = Workload(seed=33, n_skus=300, n_stores=6, n_warehouses=2, n_users=400, hold_share=0.0)
    records = list(workload.records(12_000))
    publish(settings, ((r.topic, r.key, r.value) for r in records[:6_000]))
    clustered = _other_db(settings, 5)
    assert wait_all(start_members(clustered, 2, tmp_path, generation="leftover")) == [0, 0]

    volumes = [tmp_path / f"member-{index}" / "inventory" for index in range(2)]
    shares = [recovery_rows(volume) for volume in volumes]
    whole = RecoveryRows([row for share in shares for row in share.executions],
                         [row for share in shares for row in share.fronts])  # fmt: skip
    epoch = resume_epoch_of(whole)
    assert epoch is not None and epoch > 1
    # A killed execution's snapshot of the epoch it was in, on member 1's volume (as Bytewax 0.21.1 leaves it).
    part = sorted(volumes[1].glob("part-*.sqlite3"))[0]
    with contextlib.closing(sqlite3.connect(part)) as db, db:
        db.execute("INSERT INTO snaps (step_id, state_key, snap_epoch, ser_change) VALUES (?, ?, ?, ?)",
                   ("inventory.ledgers", "SKU-LEFT-BEHIND", epoch, pickle.dumps(b"never finished")))  # fmt: skip

    publish(settings, ((r.topic, r.key, r.value) for r in records[6_000:]))
    assert wait_all(start_members(clustered, 2, tmp_path, generation="leftover")) == [0, 0]

    with contextlib.closing(sqlite3.connect(part)) as db:
        left = db.execute("SELECT count(*) FROM snaps WHERE state_key = 'SKU-LEFT-BEHIND'").fetchone()[0]
    assert left == 0
    run_to_end(settings)  # one process over the whole log
    expected, actual = stock_hashes(settings.redis.url), stock_hashes(clustered.redis.url)
    assert actual.keys() == expected.keys() and not [k for k in expected if actual[k] != expected[k]]
