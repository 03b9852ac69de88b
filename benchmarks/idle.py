"""What the local stack costs while nothing happens: CPU of every flow process and of the broker, idle.

`omnistream up --no-api` (the eight flows and the local broker, nothing published; a private
redis-server on a free port) is started, left `--settle` seconds, then each of its processes' CPU
time is read from /proc over `--seconds`. With `--variant NAME:VAR=VALUE[,VAR=VALUE]` the stack is
also run with those environment variables, alternating with the unchanged stack round by round
(the machine drifts; only comparisons within one run mean anything).

Why it matters: an idle flow still asks the broker for data. Each fetch that finds nothing is a
request the broker answers when its wait ends (`flows.kafka_source.fetch_config`), and the local
broker's cost per request grows with what it holds (docs/performance.md, "Idle flows").

Run: `python benchmarks/idle.py [--rounds 2] [--variant every-flow-prompt:OMNISTREAM_KAFKA_RELAXED_FETCH_WAIT_MS=10]`;
results go to `benchmarks/results/idle.json` and a table is printed.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.auth import cpu_s
from benchmarks.run_files import write_results
from flows.registry import FLOWS
from omnistream.stack import start_redis

RESULTS = Path(__file__).resolve().parent / "results" / "idle.json"
console = Console()


def _parent(pid: int) -> int:
    """The parent pid of `pid`, from /proc/PID/stat."""
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def processes_of(root: int) -> dict[str, int]:
    """The stack's processes under `root` by role: each flow's name, and `broker`."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = _parent(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue

    def under_root(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 1)
        return False

    roles: dict[str, int] = {}
    for pid in parents:
        if pid == root or not under_root(pid):
            continue
        try:
            command = _cmdline(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        words = command.split()
        if "flows.run" in words and words[-1] in FLOWS:
            roles[words[-1]] = pid
        elif "tansu" in command.lower() and "python" not in command:
            roles["broker"] = pid
    return roles


def idle_round(env: dict[str, str], settle_s: float, seconds: float) -> dict[str, float]:
    """One run of the stack: each role's share of a core while idle."""
    redis_svc = start_redis()
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-bench-idle-"))
    log = (workdir / "up.log").open("wb")
    up = subprocess.Popen([sys.executable, "-m", "omnistream.cli", "up", "--no-api"], cwd=workdir,
                          env={**os.environ, **env, "OMNISTREAM_REDIS_URL": redis_svc.address},
                          stdout=log, stderr=log)  # fmt: skip
    try:
        deadline = time.monotonic() + settle_s + 60
        while len(roles := processes_of(up.pid)) < len(FLOWS) + 1:
            if up.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the stack did not start: {workdir / 'up.log'}")
            time.sleep(0.5)
        time.sleep(settle_s)
        before = {role: cpu_s(pid) for role, pid in roles.items()}
        time.sleep(seconds)
        after = {role: cpu_s(pid) for role, pid in roles.items()}
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()
        redis_svc.stop()
    shares = {role: round((after[role] - before[role]) / seconds, 3) for role in roles}
    shares["flows"] = round(sum(share for role, share in shares.items() if role != "broker"), 3)
    shares["all"] = round(shares["flows"] + shares.get("broker", 0.0), 3)
    return shares


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    """`NAME:VAR=VALUE[,VAR=VALUE]` -> (NAME, {VAR: VALUE})."""
    name, _, assignments = text.partition(":")
    env = dict(item.split("=", 1) for item in assignments.split(",") if item)
    if not name or not env:
        raise argparse.ArgumentTypeError(f"expected NAME:VAR=VALUE[,VAR=VALUE], got {text!r}")
    return name, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds after every flow has started")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--variant", type=parse_variant, action="append", default=[])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    variants: list[tuple[str, dict[str, str]]] = [("as configured", {}), *args.variant]
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    for n in range(args.rounds):
        for name, env in variants if n % 2 == 0 else variants[::-1]:
            console.print(f"round {n + 1}: {name} ...")
            rounds[name].append(idle_round(env, args.settle, args.seconds))
    roles = [*FLOWS, "flows", "broker", "all"]
    table = Table(title=f"Idle stack, share of a core (median of {args.rounds} rounds)")
    table.add_column("process")
    for name, _ in variants:
        table.add_column(name, justify="right")
    for role in roles:
        table.add_row(role, *(f"{statistics.median(r.get(role, 0.0) for r in rounds[name]):.3f}"
                              for name, _ in variants))  # fmt: skip
    console.print(table)
    results: dict[str, Any] = {
        "command": "python benchmarks/idle.py " + " ".join(sys.argv[1:]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "variants": {name: env for name, env in variants},
        "rounds": rounds,
    }
    write_results(args.out, results)
    console.print(f"results: {args.out}")


if __name__ == "__main__":
    main()
