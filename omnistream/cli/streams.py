"""What `simulate` and `replay` share: a record stream that stops cleanly, its opening, counts and progress."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from omnistream.cli.common import console, err_console

if TYPE_CHECKING:
    from sim.record import SimRecord


class GracefulStop:
    """Ctrl-C, SIGTERM or SIGHUP end a record stream instead of interrupting the producer mid-batch.

    The stream then ends normally and the publisher flushes: nothing already produced is lost. A second
    signal interrupts at once.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> GracefulStop:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def guard(self, records: Iterable[SimRecord]) -> Iterator[SimRecord]:
        """`records` until a stop is requested; checked before each record is drawn, so none is dropped."""
        records = iter(records)
        while not self.requested:
            record = next(records, None)
            if record is None:
                return
            yield record


class Opening:
    """The catalog and opening stock at the head of a stream; then `rest()`, the traffic after it.

    The opening is every record dated up to `start_ts + 1 s` (sim.workload). It goes out unpaced: at a demo's
    200 events/s its ~40,000 records would take minutes before the first sale.
    """

    def __init__(self, records: Iterator[SimRecord], end_ts: str) -> None:
        self._records = records
        self._end_ts = end_ts
        self._first_after: list[SimRecord] = []

    def __iter__(self) -> Iterator[SimRecord]:
        import orjson

        for record in self._records:
            if orjson.loads(record.value).get("ts", "") > self._end_ts:  # the opening is clean JSON
                self._first_after.append(record)
                return
            yield record

    def rest(self) -> Iterator[SimRecord]:
        yield from self._first_after
        yield from self._records


@dataclass
class Counts:
    """Records per topic, and how many of them were injected duplicates or malformed."""

    total: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    malformed: dict[str, int] = field(default_factory=dict)

    def tally(self, records: Iterable[SimRecord], advance: Callable[[int], None]) -> Iterator[SimRecord]:
        """`records`, counted as each one is handed on (to the producer, or to a file)."""
        total, duplicates, malformed = self.total, self.duplicates, self.malformed
        for record in records:
            name = record.topic.value
            total[name] = total.get(name, 0) + 1
            if record.duplicate:
                duplicates[name] = duplicates.get(name, 0) + 1
            if record.malformed:
                malformed[name] = malformed.get(name, 0) + 1
            advance(1)
            yield record


def until_wall_time(records: Iterator[SimRecord], deadline: float) -> Iterator[SimRecord]:
    """`records` until `deadline` (monotonic clock); checked before each record is drawn."""
    while time.monotonic() < deadline:
        record = next(records, None)
        if record is None:
            return
        yield record


class _RateColumn(ProgressColumn):
    """Events per second over the last few seconds."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:,.0f} events/s" if task.speed else "", style="progress.data.speed")


@contextlib.contextmanager
def progress(total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress display on stderr; yields `advance(n)`."""
    if total is None:
        columns = [TextColumn("events"), TextColumn("{task.completed:,.0f}"), _RateColumn(), TimeElapsedColumn()]
    else:
        columns = [TextColumn("events"), BarColumn(), MofNCompleteColumn(), _RateColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("events", total=total)
        yield lambda n: bar.advance(task, n)


def print_counts(counts: Counts, title: str) -> None:
    """The table printed when a stream ends: records per topic, with the duplicates and malformed among them."""
    table = Table(title=title)
    for column in ("topic", "events", "duplicates", "malformed"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for name in sorted(counts.total):
        table.add_row(name, f"{counts.total[name]:,}", f"{counts.duplicates.get(name, 0):,}",
                      f"{counts.malformed.get(name, 0):,}")  # fmt: skip
    table.add_row("[bold]total[/]", f"{sum(counts.total.values()):,}", f"{sum(counts.duplicates.values()):,}",
                  f"{sum(counts.malformed.values()):,}")  # fmt: skip
    console.print(table)
