"""One process of a Bytewax cluster spread over hosts: its id, its peers and its share of the recovery partitions.

On Kubernetes each process of a flow is a pod of a StatefulSet (`deploy/k8s/`):
the pod's ordinal is its process id, the StatefulSet's stable DNS names are the
addresses, and each pod has a persistent volume of its own for recovery. Every
pod runs the same command (`python -m flows.run NAME`) and finds the rest here,
from `settings.cluster` and the host name; `tests/integration/test_flow_cluster.py`
runs that same command as a 2- and a 4-process cluster on one machine.

Recovery partitions are created for the largest planned cluster
(`OMNISTREAM_RECOVERY_PARTITIONS`) and dealt out by ordinal: process `i` of `n`
keeps partition `p` when `p % n == i`. Bytewax finds the partitions on every
process's volume and needs their union to be whole. Changing the process count
therefore means moving partition files between volumes (`docs/scaleout.md`).
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flows.launcher import (
    STATE_FORMAT_FILE,
    RecoveryRows,
    discard_snapshots_from,
    ensure_recovery,
    recovery_rows,
    resume_epoch_of,
)
from omnistream.settings import Settings
from state.connection import connect
from state.recovery_rendezvous import RecoveryRendezvous, RendezvousTimeout

log = logging.getLogger(__name__)

_ORDINAL = re.compile(r"-(\d+)$")
_GENERATION_FILE = "generation"  # as `flows.launcher.ensure_recovery` names it


@dataclass(frozen=True)
class Member:
    """Where this process stands in its cluster."""

    process_id: int
    addresses: list[str]


def ordinal(host_name: str) -> int:
    """The ordinal ending a StatefulSet pod's host name.

    >>> ordinal("inventory-flow-3"), ordinal("inventory-flow-3.inventory-flow.omni.svc.cluster.local")
    (3, 3)
    >>> ordinal("laptop")
    Traceback (most recent call last):
    ...
    ValueError: host name 'laptop' does not end in -<ordinal>: set OMNISTREAM_CLUSTER_PROCESS_ID
    """
    found = _ORDINAL.search(host_name.split(".", 1)[0])
    if found is None:
        raise ValueError(f"host name {host_name!r} does not end in -<ordinal>: set OMNISTREAM_CLUSTER_PROCESS_ID")
    return int(found.group(1))


def member(settings: Settings, host_name: str | None = None) -> Member | None:
    """This process's id and every process's address; None when the process is not a spread cluster's member.

    >>> s = Settings(processes=2, recovery_partitions=8, cluster_address_template="inv-{i}.inv:2101")
    >>> member(s, "inv-1")
    Member(process_id=1, addresses=['inv-0.inv:2101', 'inv-1.inv:2101'])
    """
    template = settings.cluster.address_template
    if not template:
        return None
    if "{i}" not in template:
        raise ValueError(f"OMNISTREAM_CLUSTER_ADDRESS_TEMPLATE must contain {{i}}: {template!r}")
    process_id = settings.cluster.process_id
    if process_id is None:
        process_id = ordinal(host_name or socket.gethostname())
    if process_id >= settings.processes:
        raise ValueError(f"process {process_id} is outside a cluster of OMNISTREAM_PROCESSES={settings.processes}")
    if settings.recovery.partitions < settings.processes:
        raise ValueError(
            f"OMNISTREAM_RECOVERY_PARTITIONS={settings.recovery.partitions} is fewer than the "
            f"{settings.processes} processes: every process needs one at least"
        )
    return Member(process_id, [template.replace("{i}", str(i)) for i in range(settings.processes)])


def partitions_of(process_id: int, processes: int, partitions: int) -> list[int]:
    """The recovery partitions process `process_id` of `processes` keeps.

    >>> partitions_of(1, 4, 16)
    [1, 5, 9, 13]
    """
    return [p for p in range(partitions) if p % processes == process_id]


def ensure_member_recovery(directory: Path, settings: Settings, me: Member, state_format: int) -> str:
    """This process's share of fresh recovery partitions, unless it has some; returns the lineage.

    The lineage is the cluster's (`OMNISTREAM_CLUSTER_GENERATION`), the same on every member;
    a volume whose partitions belong to another lineage is refused, never mixed in.
    """
    generation = settings.cluster.generation
    if not generation:
        raise ValueError("OMNISTREAM_CLUSTER_GENERATION must be set for a cluster spread over hosts")
    directory.mkdir(parents=True, exist_ok=True)
    generation_file = directory / _GENERATION_FILE
    if not any(directory.glob("part-*.sqlite3")):
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            subprocess.run(
                [sys.executable, "-m", "bytewax.recovery", scratch, str(settings.recovery.partitions)], check=True
            )
            for index in partitions_of(me.process_id, settings.processes, settings.recovery.partitions):
                shutil.move(Path(scratch) / f"part-{index}.sqlite3", directory / f"part-{index}.sqlite3")
        generation_file.write_text(generation)
        (directory / STATE_FORMAT_FILE).write_text(f"{state_format}\n")
    found = ensure_recovery(directory, settings.recovery.partitions, state_format)  # checks the snapshot layout
    if found != generation:
        raise SystemExit(
            f"omnistream: the recovery partitions in {directory} belong to lineage {found!r}, the cluster's is "
            f"{generation!r}: restore this volume's partitions, or recreate every member's and set the new lineage"
        )
    return generation


def agree_on_resume_epoch(directory: Path, settings: Settings, me: Member, flow: str, generation: str) -> int:
    """Agree with the other members on the epoch the cluster resumes from; delete this volume's snapshots past it.

    What `flows.launcher.start_flow` does for a cluster on one host (`discard_unfinished_snapshots`),
    for one spread over hosts: Bytewax spreads its bookkeeping rows over every partition, and each
    member holds only its share, so the members meet in Redis first (`state.recovery_rendezvous`)
    and each computes the epoch from the union of everyone's rows. Returns how many snapshots this
    member deleted. If not every member comes within `OMNISTREAM_CLUSTER_RENDEZVOUS_TIMEOUT_S`, it
    deletes nothing (a member's share alone could name an earlier epoch, and deleting from there
    would lose state) and says so.
    """
    mine = recovery_rows(directory)
    rendezvous = RecoveryRendezvous(connect(settings.redis.url, timeout_s=10.0), flow, generation, settings.processes)
    try:
        union = rendezvous.agree(me.process_id, mine._asdict(), settings.cluster.rendezvous_timeout_s)
    except RendezvousTimeout as missed:
        log.warning("%s: %s; starting without deleting snapshots past the resume epoch", flow, missed)
        return 0
    epoch = resume_epoch_of(RecoveryRows(*(union.get(table, []) for table in RecoveryRows._fields)))
    if epoch is None:
        return 0
    deleted = discard_snapshots_from(directory, epoch)
    if deleted:
        log.warning("%s: deleted %d snapshots of epochs the cluster never finished (>= %d)", flow, deleted, epoch)
    return deleted
