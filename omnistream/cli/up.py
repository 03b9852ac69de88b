"""`omnistream up`: the whole stack on this machine until Ctrl-C, and the summary it prints when ready."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from events.topics import Topic
from omnistream.cli.common import (
    DEFAULT_RATE_EPS,
    LOG_DIR,
    UserError,
    console,
    err_console,
    error_line,
    load_settings,
    recovery_enabled,
    simulated_workload,
    terminate_like_ctrl_c,
)
from omnistream.cli.local_run import LocalRun

if TYPE_CHECKING:
    from sim.workload import Workload


def up(
    simulate: Annotated[bool, typer.Option("--simulate", help="Also run the simulator.")] = False,
    rate: Annotated[float, typer.Option(min=0.1, help="Simulator events per second after the opening.")] = (
        DEFAULT_RATE_EPS
    ),
    api: Annotated[bool, typer.Option("--api/--no-api", help="Also run the HTTP API.")] = True,
) -> None:
    """Run the whole stack here: Redis, broker, topics, every flow, API (and simulator) until Ctrl-C."""
    settings = load_settings()
    # Started in the background, SIGINT may be ignored, and children would inherit that: with a handler
    # installed here they start with the default, so Ctrl-C and the stops below reach them all.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run = LocalRun(settings, console)
    code = 0
    with terminate_like_ctrl_c():
        try:
            run.start_services()
            run.create_topics()
            run.forget_stale_state()
            run.issue_demo_keys()
            run.start_flows()
            if api:
                run.start_api()
                run.wait_api_ready()
            workload = simulated_workload(run.effective.sim.seed)
            if simulate:
                run.start_simulator(rate)
                run.wait_opening_loaded(workload)
            console.print(_summary(run, workload, api=api, simulate=simulate, rate=rate))
            console.print("[bold green]ready[/] — Ctrl-C stops everything")
            run.watch()
        except KeyboardInterrupt:
            console.print("stopping …")
        except UserError as ex:
            error_line(f"omnistream: {ex}")
            if ex.details:
                err_console.print(ex.details, style="dim", markup=False, highlight=False, soft_wrap=True)
            code = 1
        finally:  # on a bug too: the traceback comes after the children are stopped
            # A second Ctrl-C must not abandon half-stopped children; every stop below is bounded in time.
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            try:
                run.stop()
            finally:
                signal.signal(signal.SIGINT, signal.default_int_handler)
    raise typer.Exit(code)


def _summary(run: LocalRun, workload: Workload, *, api: bool, simulate: bool, rate: float) -> Panel:
    assert run.redis is not None and run.broker is not None
    s = run.effective
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Redis", s.redis.display_url + ("  (started here, diskless)" if run.redis.started_here else ""))
    grid.add_row("Kafka", s.kafka.brokers + ("  (Tansu, in memory, started here)" if run.broker.started_here else ""))
    if api:
        grid.add_row("Console", f"{run.api_base}/")
        if run.console_key:
            grid.add_row("  console key", f"{run.console_key}  (role console; `omnistream keys` makes others)")
        grid.add_row("API", run.api_base)
        grid.add_row("  docs", f"{run.api_base}/docs")
        grid.add_row("  metrics", f"{run.api_base}/metrics")
    else:
        grid.add_row("API", "off (--no-api)")
    from flows.metrics import metrics_port

    grid.add_row("Flows", f"{', '.join(run.flows)}: {s.processes} process(es) × {s.workers} worker(s) each")
    for ordinal, name in enumerate(run.flows):
        port = metrics_port(s.flow.metrics_port, ordinal, 0)
        metrics = f"http://127.0.0.1:{port}/metrics" if port else "off"
        if port and s.processes > 1:
            metrics += f"  (process i: port {port} + i)"
        grid.add_row(f"  {name} metrics", metrics)
    grid.add_row("  recovery", str(s.recovery.dir) if recovery_enabled(s) else "off")
    grid.add_row("Topics", f"{s.topic.prefix}{{{','.join(t.value for t in Topic)}}}")
    grid.add_row("Simulator", f"~{rate:g} events/s, seed {s.sim.seed}" if simulate else "off (add --simulate)")
    grid.add_row("Logs", f"{LOG_DIR}/")
    body: list[RenderableType] = [grid]
    if api:
        best_sellers = sorted(workload.catalog.products, key=lambda p: p.rank)  # stocked everywhere, moving
        sku, other, store = best_sellers[0].sku, best_sellers[1].sku, workload.catalog.stores[0]
        auth = f"-H 'Authorization: Bearer {run.console_key}' " if run.console_key else ""
        examples = [
            f"curl -s {auth}{run.api_base}/v1/inventory/{sku}",
            f"curl -s {auth}{run.api_base}/v1/inventory/{sku}/locations/{store}",
            f"curl -s {auth}'{run.api_base}/v1/inventory?skus={sku},{other}'",
            f"curl -s {auth}{run.api_base}/v1/experiments",
            f"curl -s {auth}'{run.api_base}/v1/forecasts/{sku}?location_id={store}&days=7'",
            f"curl -s {auth}'{run.api_base}/v1/forecasts/rising?location_id={store}&limit=5'",
            f"curl -s {auth}'{run.api_base}/v1/suggestions/reorders?location_id={store}&limit=5'",
            *_loyalty_examples(run.api_base, workload, auth),
        ]
        body += [Text(""), Text("Try", style="bold"), *(Text(line) for line in examples)]
    return Panel(Group(*body), title="omnistream up", border_style="cyan", expand=False)


def _loyalty_examples(api_base: str, workload: Workload, auth: str = "") -> list[str]:
    """A member of the simulated stream's first store sales (their balance fills first), and attribution."""
    import orjson

    member = next((orjson.loads(r.value).get("customer_id") for r in workload.records(200_000)
                   if r.topic is Topic.POS and b'"customer_id"' in r.value), None)  # fmt: skip
    out = [f"curl -s {auth}{api_base}/v1/loyalty/{member}"] if member else []
    out.append(f"curl -s {auth}'{api_base}/v1/attribution?model=markov&by=campaign'")  # the last 30 days
    return out
