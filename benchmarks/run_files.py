"""What every benchmark run does with its files: show the flows' logs when a run fails, write the results."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console


@contextmanager
def logs_shown_on_failure(workdir: Path, console: Console) -> Iterator[None]:
    """Re-raise a failure after printing the tail of each `*.log` in `workdir` (the flows' own words)."""
    try:
        yield
    except Exception:
        for log in workdir.glob("*.log"):
            console.print(f"[red]{log.name}[/red]: {log.read_text(errors='replace')[-3000:]}")
        raise


def write_results(path: Path, results: dict[str, Any]) -> None:
    """The run's results as indented JSON at `path` (its folder made if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
