"""Starts a flow as Bytewax processes: recovery on by default, a loopback cluster when asked.

Bytewax 0.21.1 specifics live in `flows/`: recovery partitions are created
once with `python -m bytewax.recovery DIR N`; each process runs
`python -m flows.run NAME` (see there); a cluster is one process per
`--process-id` with every process's address (threads in one process do not
scale under the GIL: docs/performance.md, so the unit of scale is the process).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from flows.registry import FLOWS, GENERATION_ENV, STATE_FORMATS
from omnistream.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """`settings` as `OMNISTREAM_*` variables, so a child process reads the same configuration."""
    env: dict[str, str] = {}
    for name, value in settings.flat_values().items():
        env[f"OMNISTREAM_{name.upper()}"] = "" if value is None else str(value)
    return env


_GENERATION_FILE = "generation"
STATE_FORMAT_FILE = "state-format"


class IncompatibleRecovery(SystemExit):
    """Recovery state of another snapshot layout: refused at start-up with a message, never misread."""


def flow_recovery_dir(recovery_dir: Path, flow: str) -> Path:
    """Each flow keeps its recovery partitions (and generation) in a folder of its own."""
    return recovery_dir / flow


def ensure_recovery(directory: Path, partitions: int, state_format: int = 1) -> str:
    """Create Bytewax recovery partitions in `directory` unless they exist; returns their generation.

    The generation names this lineage of flow state. It is born with the
    partitions, so a restart after a crash keeps it, and fresh partitions get
    a new one: Redis then knows that versions of different lineages do not
    compare (`state.stock_writer`).

    `state_format` is the layout of the flow's snapshots (`flows.registry.STATE_FORMATS`);
    partitions written in another layout raise `IncompatibleRecovery`.
    """
    directory.mkdir(parents=True, exist_ok=True)
    generation_file = directory / _GENERATION_FILE
    format_file = directory / STATE_FORMAT_FILE
    if not any(directory.glob("part-*.sqlite3")):
        subprocess.run([sys.executable, "-m", "bytewax.recovery", str(directory), str(partitions)], check=True)
        generation_file.unlink(missing_ok=True)
        format_file.write_text(f"{state_format}\n")
    found = int(format_file.read_text()) if format_file.exists() else 1  # before the file existed: layout 1
    if found != state_format:
        raise IncompatibleRecovery(
            f"omnistream: the recovery state in {directory} has snapshot layout {found}, this release writes "
            f"{state_format}; run the release that wrote it, or remove {directory} to rebuild the state from the "
            "topics (a new lineage: Redis accepts its versions)"
        )
    if not generation_file.exists():
        generation_file.write_text(uuid.uuid4().hex[:12])
    return generation_file.read_text().strip()


class RecoveryRows(NamedTuple):
    """The rows of the partitions' `exs` and `fronts` tables: what Bytewax resumes from is a function of them."""

    executions: Sequence[Sequence[int]]
    """(ex_num, worker_count, resume_epoch) per execution."""
    fronts: Sequence[Sequence[int]]
    """(ex_num, worker_index, worker_frontier) per worker of an execution."""


def recovery_rows(directory: Path) -> RecoveryRows:
    """The `exs` and `fronts` rows of every partition in `directory`."""
    executions: list[tuple[int, int, int]] = []
    fronts: list[tuple[int, int, int]] = []
    for part in sorted(directory.glob("part-*.sqlite3")):
        with contextlib.closing(sqlite3.connect(part)) as db:
            executions += db.execute("SELECT ex_num, worker_count, resume_epoch FROM exs").fetchall()
            fronts += db.execute("SELECT ex_num, worker_index, worker_frontier FROM fronts").fetchall()
    return RecoveryRows(executions, fronts)


def resume_epoch_of(rows: RecoveryRows) -> int | None:
    """The epoch Bytewax 0.21.1 resumes from, given every partition's rows; None before its first execution.

    Bytewax's own rule, over every partition's `exs` and `fronts` tables: the newest execution's
    workers each count at the larger of their last written frontier and the execution's own resume
    epoch (a worker that wrote none yet), and the cluster resumes at the smallest of those. Bytewax
    then loads, per state key, the newest snapshot *before* that epoch. The rows of *every*
    partition are needed: Bytewax spreads them over the partitions, so a cluster member's own
    share of them gives a wrong answer (`flows.cluster_member.agree_on_resume_epoch`).
    """
    executions = {ex: (workers, resume) for ex, workers, resume in rows.executions}
    if not executions:
        return None
    fronts: dict[tuple[int, int], int] = {}
    for ex, worker, frontier in rows.fronts:
        fronts[ex, worker] = max(frontier, fronts.get((ex, worker), frontier))
    last = max(executions)
    workers, resume = executions[last]
    return min(max(fronts.get((last, worker), resume), resume) for worker in range(workers))


def resume_epoch(directory: Path) -> int | None:
    """The epoch Bytewax 0.21.1 will resume the flow in `directory` (holding every partition) from."""
    return resume_epoch_of(recovery_rows(directory))


def discard_snapshots_from(directory: Path, epoch: int) -> int:
    """Delete the snapshots of epoch `epoch` and later from the partitions in `directory`; returns how many."""
    deleted = 0
    for part in sorted(directory.glob("part-*.sqlite3")):
        with contextlib.closing(sqlite3.connect(part)) as db, db:
            deleted += db.execute("DELETE FROM snaps WHERE snap_epoch >= ?", (epoch,)).rowcount
    return deleted


def discard_unfinished_snapshots(directory: Path) -> int:
    """Delete the snapshots of epochs the cluster never finished; returns how many. Call it with no process running.

    A run SIGKILLed mid-epoch can leave snapshots of that epoch in the partitions: a step writes
    its snapshot when it is done with the epoch, the cluster's frontier moves only once every
    step is, and Bytewax 0.21.1 keeps the rows of an execution that died in between. The next
    execution resumes before them and overwrites only what it snapshots in that epoch (a step
    it does not touch, a source not yet reading); once it passes the epoch, the rest are loaded
    at the following resume beside other steps' snapshots of other executions. A step then
    resumes behind one upstream that has already applied (and deduplicates) what the source
    replays, and those effects are lost for good (tests/integration/test_loyalty_oracle.py).
    No resume loads a snapshot at or past its own resume epoch, so deleting them loses nothing.
    `directory` must hold every partition: a cluster member agrees on the epoch with the others
    first (`flows.cluster_member.agree_on_resume_epoch`).
    """
    epoch = resume_epoch(directory)
    if epoch is None:
        return 0
    return discard_snapshots_from(directory, epoch)


@dataclass
class FlowRun:
    """The processes of one running flow."""

    name: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def alive(self) -> bool:
        return any(p.poll() is None for p in self.procs)

    def wait(self, timeout_s: float | None = None) -> int:
        """Wait for every process; returns the worst exit code (0 when all succeeded)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        codes = []
        for proc in self.procs:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            codes.append(proc.wait(remaining))
        return max(codes, key=abs, default=0)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Interrupt every process (Bytewax stops at the next epoch), kill what lingers."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def kill(self) -> None:
        """SIGKILL every process, as a crash would."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait()


def _free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nothing listens on now: the addresses of a cluster's processes.

    Every socket stays bound until all ports are chosen, so the kernel never hands out the same one twice.
    """
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
    return sorted(ports)


def start_flow(
    name: str,
    settings: Settings,
    *,
    recovery: bool = True,
    extra_env: dict[str, str] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
) -> FlowRun:
    """Start flow `name` as `settings.processes` processes of `settings.workers` workers each."""
    if name not in FLOWS:
        raise ValueError(f"unknown flow {name!r}; known: {', '.join(FLOWS)}")
    base = [sys.executable, "-m", "flows.run", name]
    env = {**os.environ, **settings_env(settings)}
    if recovery and settings.recovery.dir is not None:
        # Created here, once, before the processes start; each process then reads its generation.
        directory = flow_recovery_dir(settings.recovery.dir, name)
        ensure_recovery(directory, settings.recovery.partitions, STATE_FORMATS[name])
        # Also here and only here: once a process runs, rows past the resume epoch may be its own.
        discard_unfinished_snapshots(directory)
    else:
        base.append("--no-recovery")
        # Every run without recovery is a lineage of its own, shared by all its processes.
        env[GENERATION_ENV] = uuid.uuid4().hex[:12]
    env.update(extra_env or {})
    run = FlowRun(name)
    if settings.processes == 1:
        run.procs.append(subprocess.Popen(base, env=env, stdout=stdout, stderr=stderr))
        return run
    addresses = ",".join(f"127.0.0.1:{port}" for port in _free_ports(settings.processes))
    for index in range(settings.processes):
        cmd = [*base, "--process-id", str(index), "--addresses", addresses]
        run.procs.append(subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr))
    return run


def run_flow(name: str, settings: Settings, *, recovery: bool = True) -> int:
    """Run flow `name` in the foreground until it ends or Ctrl-C; returns its exit code."""
    run = start_flow(name, settings, recovery=recovery)
    try:
        return run.wait()
    except KeyboardInterrupt:
        run.stop()
        return 130
