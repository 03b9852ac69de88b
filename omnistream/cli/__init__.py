"""The `omnistream` command: the local stack, flows, API, simulator, replays and the schema.

Every command reads `Settings` from the `OMNISTREAM_*` environment first, so a
bad value stops it with one line naming the variable; options given on the
command line override the environment. A user's mistake (unknown flow, missing
file, no broker) is one red line and a non-zero exit, never a traceback
(`omnistream.cli.common`).

`omnistream up` is the embedded default: it reuses the Redis and the broker the
settings point at when they answer, starts private ones otherwise, and runs every
flow and the API (and, with `--simulate`, the simulator) as child
processes until Ctrl-C.

Each command group lives in a module of its own; this one only assembles them,
in the order `omnistream --help` lists them.
"""

from __future__ import annotations

import typer

from omnistream.cli.broker import broker
from omnistream.cli.flow import flow
from omnistream.cli.keys import keys_app
from omnistream.cli.schema import schema
from omnistream.cli.serve import serve
from omnistream.cli.simulate import replay, simulate
from omnistream.cli.topics import topics_app
from omnistream.cli.up import up

__all__ = ["app"]

app = typer.Typer(
    name="omnistream",
    help="Real-time retail stream processing: Kafka -> Bytewax -> Redis -> FastAPI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would print settings, URLs with passwords included
)
app.command()(up)
app.command()(broker)
app.add_typer(topics_app, name="topics")
app.command()(flow)
app.command()(serve)
app.command()(simulate)
app.command()(replay)
app.command()(schema)
app.add_typer(keys_app, name="keys")
