"""Where the members of a cluster spread over hosts agree on the recovery rows before any of them starts.

Each member of a flow's cluster on Kubernetes keeps its share of the recovery partitions on a volume
of its own, and Bytewax spreads its bookkeeping rows (`exs`, `fronts`) over all of them: no member
can tell alone the epoch the cluster will resume from, which it needs to delete what a killed
execution left past it (`flows.launcher.discard_unfinished_snapshots`). So each member publishes
its rows here, under its process id, and waits until every member has published rows of *this*
start. Starts are numbered (`round`):

- a starting member takes the round after the newest one any member went on with (`running`), or
  the round others already wait in (`ready`), and publishes `{"state": "ready", "round", "rows"}`;
- it goes on once every member's entry is of that round, `ready` or already `running`: an entry
  still `running` from the start before carries an older round (its rows are from before that
  run), so the others wait for that member to start again and publish fresh rows;
- going on, it marks its entry `running` (its rows stay, for the others).

Rows change only while the cluster runs, and it runs only once every member went on, so the rows
of a round are current and every member of it computes the same union, hence the same epoch.
(A member killed between publishing and going on starts again in the next round, where the
others, already running, never come: it waits out its timeout, as the cluster would have.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import redis

from state import keys

Rows = Mapping[str, list[Any]]
"""A member's rows, by table (`executions`, `fronts`): lists of row tuples."""


class RendezvousTimeout(RuntimeError):
    """Not every member published rows of this start in time."""


def union_of(rows: Mapping[int, Rows]) -> dict[str, list[list[Any]]]:
    """Every member's rows in one set per table, sorted: the same whatever member computes it."""
    tables: dict[str, set[tuple[Any, ...]]] = {}
    for member_rows in rows.values():
        for table, table_rows in member_rows.items():
            tables.setdefault(table, set()).update(tuple(row) for row in table_rows)
    return {table: [list(row) for row in sorted(found)] for table, found in sorted(tables.items())}


class RecoveryRendezvous:
    """One member's side of the meeting (`flow`, `generation`: the cluster; `processes`: its size)."""

    def __init__(self, client: redis.Redis, flow: str, generation: str, processes: int) -> None:
        self.client = client
        self.key = keys.recovery_rendezvous(flow, generation)
        self.processes = processes

    def agree(
        self,
        process_id: int,
        rows: Rows,
        timeout_s: float,
        *,
        poll_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> dict[str, list[list[Any]]]:
        """Publish this member's rows, wait for every member's of this start; their union (sorted).

        Raises `RendezvousTimeout` after `timeout_s` (a member that never comes: the cluster would not
        start without it anyway). Marks this member `running` before returning.
        """
        this_round = self._next_round()
        entry: dict[str, Any] = {
            "state": "ready",
            "round": this_round,
            "rows": {table: [list(row) for row in found] for table, found in rows.items()},
        }
        self.client.hset(self.key, str(process_id), orjson.dumps(entry))
        deadline = clock() + timeout_s
        while True:
            union = self._union_if_all_met(this_round)
            if union is not None:
                entry["state"] = "running"
                self.client.hset(self.key, str(process_id), orjson.dumps(entry))
                return union
            if clock() >= deadline:
                raise RendezvousTimeout(
                    f"not every one of the {self.processes} members published its recovery rows of start "
                    f"{this_round} in {timeout_s:g} s"
                )
            time.sleep(poll_s)

    def _next_round(self) -> int:
        """The round after the newest one members went on with, or the one others already wait in."""
        entries = [orjson.loads(value) for value in self.client.hvals(self.key)]
        return max((e["round"] + (e["state"] == "running") for e in entries), default=1)

    def _union_if_all_met(self, this_round: int) -> dict[str, list[list[Any]]] | None:
        found = self.client.hmget(self.key, [str(i) for i in range(self.processes)])
        if any(value is None for value in found):
            return None
        entries = [orjson.loads(value) for value in found]  # type: ignore[arg-type]
        if any(e.get("round") != this_round for e in entries):
            return None
        return union_of({i: entry["rows"] for i, entry in enumerate(entries)})
