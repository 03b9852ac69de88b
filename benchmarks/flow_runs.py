"""One flow process run to the end of its topics, timed: the wall seconds and the CPU seconds it used.

The benchmarks that publish a backlog and then time a flow through it (`benchmarks/fraud.py`,
`benchmarks/customers.py`, `benchmarks/loyalty.py`) share this. The CPU time is the flow process's
own, all its threads (user + system, from the children's resource usage once it has been waited
for): on a shared machine it moves much less than the wall time, so comparisons of code versions
should read it.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import NamedTuple

from flows.launcher import start_flow
from omnistream.settings import Settings


class FlowRunTime(NamedTuple):
    wall_s: float
    cpu_s: float


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_to_end(flow: str, settings: Settings, log: Path, timeout_s: float = 1800) -> FlowRunTime:
    """Run `flow` until it has read its topics to their end (`flow_stop_at_end`); its output goes to `log`."""
    started, cpu = time.perf_counter(), _children_cpu_s()
    with log.open("wb") as out:
        run = start_flow(flow, settings.model_copy(update={"flow_stop_at_end": True}), stdout=out, stderr=out)
        code = run.wait(timeout_s)
    if code != 0:
        raise RuntimeError(f"{flow} flow exited with {code}; see {log}")
    return FlowRunTime(time.perf_counter() - started, _children_cpu_s() - cpu)
