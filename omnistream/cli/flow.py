"""`omnistream flow NAME`: one Bytewax flow in the foreground (`flows.launcher`)."""

from __future__ import annotations

from typing import Annotated

import typer

from omnistream.cli.common import console, fail, load_settings, recovery_enabled, terminate_like_ctrl_c


def flow(
    name: Annotated[str, typer.Argument(help="The flow to run, e.g. `inventory`.")],
    processes: Annotated[
        int | None, typer.Option(min=1, max=64, help="Processes [default: OMNISTREAM_PROCESSES].")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker threads per process [default: OMNISTREAM_WORKERS].")
    ] = None,
    recovery: Annotated[bool, typer.Option("--recovery/--no-recovery", help="Use Bytewax recovery.")] = True,
) -> None:
    """Run a Bytewax flow in the foreground until it ends or Ctrl-C."""
    settings = load_settings(processes=processes, workers=workers)
    from flows.launcher import run_flow
    from flows.registry import FLOWS

    if name not in FLOWS:
        fail(f"unknown flow {name!r}; known flows: {', '.join(sorted(FLOWS))}")
    enabled = recovery and recovery_enabled(settings)
    console.print(
        f"flow [bold]{name}[/]: {settings.processes} process(es) × {settings.workers} worker(s), "
        f"recovery {settings.recovery.dir if enabled else 'off'}, brokers {settings.kafka.brokers}",
        highlight=False,
        soft_wrap=True,
    )
    with terminate_like_ctrl_c():
        code = run_flow(name, settings, recovery=enabled)
    if code == 130:
        console.print(f"flow {name} stopped")
    elif code != 0:
        fail(f"flow {name} exited with code {code}", code=code if 0 < code < 256 else 1)
