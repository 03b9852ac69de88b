"""`omnistream schema`: the JSON Schema of the input events, generated from the contract's models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from omnistream.cli.common import err_console, fail, load_settings, resolve_topic


def schema(
    topic: Annotated[str | None, typer.Option(help="One input topic (`inventory` or `omni.inventory`).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write it to this file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of the input events: of all topics (keyed by topic), or of one."""
    settings = load_settings()
    from events.decode import EVENT_TYPES
    from events.schema import json_schema

    chosen = None if topic is None else resolve_topic(topic, settings)
    if chosen is not None and chosen not in EVENT_TYPES:
        fail(f"{chosen.value!r} is an output topic; schemas exist for {', '.join(t.value for t in EVENT_TYPES)}")
    text = json.dumps(json_schema(chosen), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as ex:
        fail(f"cannot write {out}: {ex.strerror}")
    err_console.print(f"wrote {out}", markup=False, highlight=False)
