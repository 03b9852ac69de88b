"""The `omnistream` command: the local stack, flows, API, simulator, replays and the schema.

Every command reads `Settings` from the `OMNISTREAM_*` environment first, so a
bad value stops it with one line naming the variable; options given on the
command line override the environment. A user's mistake (unknown flow, missing
file, no broker) is one red line and a non-zero exit, never a traceback.

`omnistream up` is the embedded default: it reuses the Redis and the broker the
settings point at when they answer, starts private ones otherwise, and runs every
flow and the API (and, with `--simulate`, the simulator) as child
processes until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from events.topics import Topic
from omnistream.settings import Settings, settings_or_exit

if TYPE_CHECKING:
    from flows.launcher import FlowRun
    from omnistream.stack import LocalService
    from sim.record import SimRecord
    from sim.workload import Workload

app = typer.Typer(
    name="omnistream",
    help="Real-time retail stream processing: Kafka -> Bytewax -> Redis -> FastAPI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals would print settings, URLs with passwords included
)
topics_app = typer.Typer(help="The contract's Kafka topics.", no_args_is_help=True)

console = Console()
err_console = Console(stderr=True)

LOG_DIR = Path(".omnistream/logs")
API_APP = "serving.app:create_app"
DEFAULT_RATE_EPS = 200.0


class UserError(Exception):
    """A mistake the user can fix, or a service that is not there; printed as one red line.

    `details` (a log's last lines, say) follow it, not in red.
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


def _error_line(message: str) -> None:
    # markup off: messages quote user input and settings such as "host:port[,host:port…]"
    err_console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    _error_line(f"omnistream: {message}")
    raise typer.Exit(code)


def _settings(**overrides: object) -> Settings:
    """The settings, with the options that were given; a bad value exits with one line per variable."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return settings_or_exit(**given)
    except SystemExit as ex:
        for line in str(ex.code).splitlines():
            _error_line(line)
        raise typer.Exit(2) from None


def _recovery_enabled(settings: Settings) -> bool:
    """Whether flows keep Bytewax recovery state (OMNISTREAM_RECOVERY_DIR="" turns it off)."""
    return settings.recovery_dir is not None


def _resolve_topic(name: str, settings: Settings) -> Topic:
    """`name` as a contract topic: unprefixed (`inventory`) or full (`omni.inventory`)."""
    with contextlib.suppress(ValueError):
        return Topic(name)
    with contextlib.suppress(ValueError):
        return Topic.from_name(name, settings.topic_prefix)
    known = ", ".join(t.value for t in Topic)
    _fail(f"unknown topic {name!r}; expected one of {known}, optionally prefixed with {settings.topic_prefix!r}")


def _require_broker(settings: Settings) -> None:
    from omnistream.stack import brokers_reachable

    if not brokers_reachable(settings.kafka_brokers):
        _fail(
            f"no Kafka broker answers at {settings.kafka_brokers} (OMNISTREAM_KAFKA_BROKERS); "
            "start one with `omnistream broker`, or run everything with `omnistream up`"
        )


@contextlib.contextmanager
def _terminate_like_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP stop a command the way Ctrl-C does: one shutdown path for all three."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (with SO_REUSEADDR, as uvicorn binds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _free_ports_from(host: str, count: int) -> int:
    """The first of `count` consecutive free ports (a flow process listens on its port plus its index)."""
    from omnistream.stack import free_port

    while True:
        first = free_port()
        if first + count <= 65536 and all(_port_free(host, first + i) for i in range(count)):
            return first


def _reachable_host(host: str) -> str:
    """The address to reach, from this machine, a server listening on `host`."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


# --- up ------------------------------------------------------------------------------------------------------------


@app.command()
def up(
    simulate: Annotated[bool, typer.Option("--simulate", help="Also run the simulator.")] = False,
    rate: Annotated[float, typer.Option(min=0.1, help="Simulator events per second after the opening.")] = (
        DEFAULT_RATE_EPS
    ),
    api: Annotated[bool, typer.Option("--api/--no-api", help="Also run the HTTP API.")] = True,
) -> None:
    """Run the whole stack here: Redis, broker, topics, every flow, API (and simulator) until Ctrl-C."""
    settings = _settings()
    # Started in the background, SIGINT may be ignored, and children would inherit that: with a handler
    # installed here they start with the default, so Ctrl-C and the stops below reach them all.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run = _LocalRun(settings, console)
    code = 0
    with _terminate_like_ctrl_c():
        try:
            run.start_services()
            run.create_topics()
            run.forget_stale_state()
            run.start_flows()
            if api:
                run.start_api()
                run.wait_api_ready()
            workload = _workload(run.effective.sim_seed)
            if simulate:
                run.start_simulator(rate)
                run.wait_opening_loaded(workload)
            console.print(_summary(run, workload, api=api, simulate=simulate, rate=rate))
            console.print("[bold green]ready[/] — Ctrl-C stops everything")
            run.watch()
        except KeyboardInterrupt:
            console.print("stopping …")
        except UserError as ex:
            _error_line(f"omnistream: {ex}")
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


@dataclass
class _Child:
    """A child process of `omnistream up` and the file its output goes to."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, sig: int, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class _LocalRun:
    """What `omnistream up` started, and how to stop it: producers first, the services they need last."""

    def __init__(self, settings: Settings, out: Console) -> None:
        self.settings = settings
        self.effective = settings  # with the addresses actually used
        self.out = out
        self.redis: LocalService | None = None
        self.broker: LocalService | None = None
        self.flows: dict[str, FlowRun] = {}
        self.api: _Child | None = None
        self.simulator: _Child | None = None
        self.new_topics: list[str] = []

    def say(self, what: str, text: str) -> None:
        self.out.print(f"[bold cyan]{what:<9}[/] {text}", highlight=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        self.out.print(f"[yellow]warning:[/] {text}", highlight=False, soft_wrap=True)

    @property
    def api_base(self) -> str:
        return f"http://{_reachable_host(self.effective.api_host)}:{self.effective.api_port}"

    # --- starting ---

    def start_services(self) -> None:
        from omnistream.stack import ensure_broker, ensure_redis

        try:
            self.redis = ensure_redis(self.settings.redis_url)
        except RuntimeError as ex:
            raise UserError(str(ex)) from None
        if self.redis.started_here:
            self.say("redis", f"started redis-server at {self.redis.address} (none at {self.settings.redis_url})")
        else:
            self.say("redis", f"using {self.redis.address}")
        try:
            self.broker = ensure_broker(self.settings.kafka_brokers)
        except (RuntimeError, ImportError) as ex:
            raise UserError(f"the local Kafka broker did not start: {ex}") from None
        if self.broker.started_here:
            self.say("kafka", f"started Tansu (in memory) at {self.broker.address} "
                              f"(none at {self.settings.kafka_brokers})")  # fmt: skip
        else:
            self.say("kafka", f"using {self.broker.address}")
        self.effective = self.effective.model_copy(
            update={"redis_url": self.redis.address, "kafka_brokers": self.broker.address}
        )

    def create_topics(self) -> None:
        from confluent_kafka import KafkaException

        from omnistream.kafka_admin import create_topics

        s = self.effective
        try:
            result = create_topics(s.kafka_brokers, s.topic_prefix, s.topic_partitions)
        except KafkaException as ex:
            raise UserError(f"creating topics at {s.kafka_brokers} failed: {ex}") from None
        self.new_topics = sorted(name for name, status in result.items() if status == "created")
        created = len(self.new_topics)
        self.say("topics", f"{created} created, {len(result) - created} already there "
                           f"({s.topic_prefix}*, {s.topic_partitions} partitions)")  # fmt: skip

    def forget_stale_state(self) -> None:
        """Recovery state of topics that are new here points at offsets that do not exist: wipe it.

        That is always so for a broker started here (in memory, empty), and also for a reused broker that was
        restarted empty, e.g. `omnistream broker`. Resuming from such offsets would skip the new input.
        """
        assert self.broker is not None and self.redis is not None
        if not self.new_topics:
            return
        why = "the broker is new" if self.broker.started_here else "its topics were just created"
        directory = self.effective.recovery_dir
        if directory is not None and directory.is_dir():
            # Only the partitions (and SQLite's -wal/-shm files), never the directory: it may be shared.
            parts = list(directory.rglob("part-*.sqlite3*"))
            for part in parts:
                part.unlink(missing_ok=True)
            if parts:
                self.say("recovery", f"wiped {directory}: {why}, so the offsets stored there no longer exist; "
                                     "starting from empty recovery partitions")  # fmt: skip
        if not self.redis.started_here and self._redis_holds_state():
            # Versions in Redis belong to state built from topics that no longer exist: drop them, or
            # SKUs of the new run would look stale until their versions caught up.
            from state.connection import connect
            from state.maintenance import clear_namespace

            client = connect(self.effective.redis_url)
            try:
                cleared = clear_namespace(client)
            finally:
                client.close()
            self.say("redis", f"cleared {cleared} omni:* keys of an earlier run from {self.redis.address} ({why})")

    def _redis_holds_state(self) -> bool:
        import redis

        from state import keys

        client = redis.Redis.from_url(self.effective.redis_url, socket_timeout=2.0)
        try:
            return next(iter(client.scan_iter(match=f"{keys.NAMESPACE}:stock:*", count=1000)), None) is not None
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _log(self, name: str) -> IO[bytes]:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        return (LOG_DIR / f"{name}.log").open("wb")

    def start_flows(self) -> None:
        """Every flow of `flows.run.FLOWS`, each logging to its own file."""
        from flows.launcher import start_flow
        from flows.metrics import PORTS_PER_FLOW
        from flows.run import FLOWS

        port, count = self.effective.flow_metrics_port, self.effective.processes
        span = PORTS_PER_FLOW * (len(FLOWS) - 1) + count
        if port and not all(_port_free("0.0.0.0", port + i) for i in range(span)):
            new_port = _free_ports_from("0.0.0.0", span)
            self.say("flow", f"metrics ports {port}+ are taken; using {new_port}+")
            self.effective = self.effective.model_copy(update={"flow_metrics_port": new_port})
        recovery = _recovery_enabled(self.effective)
        s = self.effective
        for name in FLOWS:
            with self._log(name) as log:
                self.flows[name] = start_flow(name, s, recovery=recovery, stdout=log.fileno(),
                                              stderr=subprocess.STDOUT)  # fmt: skip
            self.say("flow", f"{name}: {s.processes} process(es) × {s.workers} worker(s), "
                             f"recovery {s.recovery_dir if recovery else 'off'}")  # fmt: skip

    def start_api(self) -> None:
        from flows.launcher import settings_env

        host, port = self.effective.api_host, self.effective.api_port
        if not _port_free(host, port):
            new_port = _free_ports_from(host, 1)
            self.say("api", f"port {port} is taken; using {new_port}")
            self.effective = self.effective.model_copy(update={"api_port": new_port})
            port = new_port
        cmd = [sys.executable, "-m", "uvicorn", "--factory", API_APP,
               "--host", host, "--port", str(port), "--no-access-log"]  # fmt: skip
        self.api = self._spawn("api", cmd, {**os.environ, **settings_env(self.effective)})

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> _Child:
        with self._log(name) as log:
            # Own process group: Ctrl-C in the terminal reaches only `up`, which then stops children in order.
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, process_group=0)
        return _Child(name, proc, LOG_DIR / f"{name}.log")

    def wait_api_ready(self, timeout_s: float = 60.0) -> None:
        url = f"{self.api_base}/readyz"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.raise_if_one_died()
            if _http_ok(url):
                self.say("api", f"ready at {self.api_base}")
                return
            time.sleep(0.2)
        raise UserError(f"the API did not answer {url} within {timeout_s:.0f} s; see {LOG_DIR / 'api.log'}")

    def start_simulator(self, rate: float) -> None:
        from flows.launcher import settings_env

        cmd = [sys.executable, "-m", "omnistream.cli", "simulate", "--rate", f"{rate:g}"]
        self.simulator = self._spawn("simulator", cmd, {**os.environ, **settings_env(self.effective)})
        self.say("simulator", f"publishing the catalog and opening stock, then ~{rate:g} events/s "
                              f"(seed {self.effective.sim_seed})")  # fmt: skip

    def wait_opening_loaded(self, workload: Workload, timeout_s: float = 180.0) -> None:
        """Until every catalog SKU has stock in Redis: Kafka, the flow and Redis all work end to end."""
        import redis

        from state import keys

        skus = [product.sku for product in workload.catalog.products]
        client = redis.Redis.from_url(self.effective.redis_url, socket_timeout=2.0)
        start = time.monotonic()
        try:
            while time.monotonic() - start < timeout_s:
                self.raise_if_one_died()
                with contextlib.suppress(redis.RedisError):
                    pipe = client.pipeline(transaction=False)
                    for sku in skus:
                        pipe.hexists(keys.stock(sku), keys.STOCK_DOC_FIELD)
                    if all(pipe.execute()):
                        self.say("stock", f"opening stock of {len(skus):,} SKUs loaded in "
                                          f"{time.monotonic() - start:.1f} s")  # fmt: skip
                        return
                time.sleep(0.5)
        finally:
            client.close()
        self.warn(f"the opening stock is not all in Redis after {timeout_s:.0f} s; see {LOG_DIR}/")

    # --- watching and stopping ---

    def _children(self) -> Iterator[tuple[str, subprocess.Popen[bytes] | None, Path | None]]:
        if self.redis is not None:
            yield "redis-server", self.redis.proc, self.redis.log_path
        if self.broker is not None:
            yield "Kafka broker (Tansu)", self.broker.proc, self.broker.log_path
        for name, flow in self.flows.items():
            for index, proc in enumerate(flow.procs):
                yield f"flow {name} (process {index})", proc, LOG_DIR / f"{name}.log"
        for child in (self.api, self.simulator):
            if child is not None:
                yield child.name, child.proc, child.log_path

    def raise_if_one_died(self) -> None:
        for name, proc, log in self._children():
            if proc is not None and proc.poll() is not None:
                code = proc.returncode
                how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
                where = f"; its log: {log}" if log else ""
                raise UserError(f"{name} {how} unexpectedly; stopping the rest{where}", details=_tail(log))

    def watch(self) -> None:
        """Until Ctrl-C or SIGTERM, or until a child dies (`UserError`)."""
        while True:
            self.raise_if_one_died()
            time.sleep(0.25)

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop(signal.SIGINT)  # on Ctrl-C the simulator flushes what it produced
            self.say("stopped", "simulator")
        if self.api is not None:
            self.api.stop(signal.SIGTERM)  # uvicorn's graceful shutdown
            self.say("stopped", "api")
        for name, flow in self.flows.items():
            flow.stop()
            self.say("stopped", f"flow {name}")
        for service in (self.broker, self.redis):
            if service is not None and service.started_here:
                service.stop()
                self.say("stopped", f"{service.name} at {service.address}")


def _tail(path: Path | None, lines: int = 15) -> str:
    if path is None:
        return ""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _summary(run: _LocalRun, workload: Workload, *, api: bool, simulate: bool, rate: float) -> Panel:
    assert run.redis is not None and run.broker is not None
    s = run.effective
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Redis", s.redis_url + ("  (started here, diskless)" if run.redis.started_here else ""))
    grid.add_row("Kafka", s.kafka_brokers + ("  (Tansu, in memory, started here)" if run.broker.started_here else ""))
    if api:
        grid.add_row("API", run.api_base)
        grid.add_row("  docs", f"{run.api_base}/docs")
        grid.add_row("  metrics", f"{run.api_base}/metrics")
    else:
        grid.add_row("API", "off (--no-api)")
    from flows.metrics import metrics_port

    grid.add_row("Flows", f"{', '.join(run.flows)}: {s.processes} process(es) × {s.workers} worker(s) each")
    for ordinal, name in enumerate(run.flows):
        port = metrics_port(s.flow_metrics_port, ordinal, 0)
        metrics = f"http://127.0.0.1:{port}/metrics" if port else "off"
        if port and s.processes > 1:
            metrics += f"  (process i: port {port} + i)"
        grid.add_row(f"  {name} metrics", metrics)
    grid.add_row("  recovery", str(s.recovery_dir) if _recovery_enabled(s) else "off")
    grid.add_row("Topics", f"{s.topic_prefix}{{{','.join(t.value for t in Topic)}}}")
    grid.add_row("Simulator", f"~{rate:g} events/s, seed {s.sim_seed}" if simulate else "off (add --simulate)")
    grid.add_row("Logs", f"{LOG_DIR}/")
    body: list[RenderableType] = [grid]
    if api:
        best_sellers = sorted(workload.catalog.products, key=lambda p: p.rank)  # stocked everywhere, moving
        sku, other, store = best_sellers[0].sku, best_sellers[1].sku, workload.catalog.stores[0]
        examples = [
            f"curl -s {run.api_base}/v1/inventory/{sku}",
            f"curl -s {run.api_base}/v1/inventory/{sku}/locations/{store}",
            f"curl -s '{run.api_base}/v1/inventory?skus={sku},{other}'",
        ]
        body += [Text(""), Text("Try", style="bold"), *(Text(line) for line in examples)]
    return Panel(Group(*body), title="omnistream up", border_style="cyan", expand=False)


def _workload(seed: int, **params: float) -> Workload:
    from sim.workload import Workload

    return Workload(seed=seed, **params)  # type: ignore[arg-type]


# --- broker --------------------------------------------------------------------------------------------------------


@app.command()
def broker(
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port [default: that of OMNISTREAM_KAFKA_BROKERS].")
    ] = None,
) -> None:
    """Run a local, in-memory Kafka-compatible broker (Tansu) in the foreground until Ctrl-C."""
    settings = _settings()
    from omnistream.stack import start_broker

    if port is None:
        port = int(settings.broker_list[0].rpartition(":")[2])
    if not _port_free("127.0.0.1", port):
        _fail(f"port {port} is in use (a broker may already run there); choose another with --port")
    with _terminate_like_ctrl_c():
        try:
            service = start_broker(port)
        except (RuntimeError, ImportError, OSError) as ex:
            _fail(f"the broker did not start: {ex}")
        try:
            console.print(f"Kafka broker (Tansu, in memory) at [bold]{service.address}[/]; Ctrl-C stops it")
            console.print(f"  export OMNISTREAM_KAFKA_BROKERS={service.address}", highlight=False)
            assert service.proc is not None
            code = service.proc.wait()
            _fail(f"the broker exited with code {code}; its log: {service.log_path}\n{_tail(service.log_path)}")
        except KeyboardInterrupt:
            console.print("stopping the broker")
        finally:
            service.stop()


# --- topics --------------------------------------------------------------------------------------------------------


@topics_app.command("create")
def topics_create(
    partitions: Annotated[
        int | None, typer.Option(min=1, max=1024, help="Partitions per topic [default: OMNISTREAM_TOPIC_PARTITIONS].")
    ] = None,
) -> None:
    """Create the contract's topics (idempotent) and show which were created."""
    settings = _settings(topic_partitions=partitions)
    _require_broker(settings)
    from confluent_kafka import KafkaException

    from omnistream.kafka_admin import create_topics

    try:
        result = create_topics(settings.kafka_brokers, settings.topic_prefix, settings.topic_partitions)
    except KafkaException as ex:
        _fail(f"creating topics at {settings.kafka_brokers} failed: {ex}")
    table = Table(title=f"topics at {settings.kafka_brokers}")
    table.add_column("topic")
    table.add_column("status")
    for name, status in sorted(result.items()):
        table.add_row(name, f"[green]{status}[/]" if status == "created" else status)
    console.print(table)


app.add_typer(topics_app, name="topics")


# --- flow ----------------------------------------------------------------------------------------------------------


@app.command()
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
    settings = _settings(processes=processes, workers=workers)
    from flows.launcher import FLOWS, run_flow

    if name not in FLOWS:
        _fail(f"unknown flow {name!r}; known flows: {', '.join(sorted(FLOWS))}")
    enabled = recovery and _recovery_enabled(settings)
    console.print(
        f"flow [bold]{name}[/]: {settings.processes} process(es) × {settings.workers} worker(s), "
        f"recovery {settings.recovery_dir if enabled else 'off'}, brokers {settings.kafka_brokers}",
        highlight=False,
        soft_wrap=True,
    )
    with _terminate_like_ctrl_c():
        code = run_flow(name, settings, recovery=enabled)
    if code == 130:
        console.print(f"flow {name} stopped")
    elif code != 0:
        _fail(f"flow {name} exited with code {code}", code=code if 0 < code < 256 else 1)


# --- serve ---------------------------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [default: OMNISTREAM_API_HOST].")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port [default: OMNISTREAM_API_PORT].")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the HTTP API (uvicorn) in the foreground."""
    settings = _settings(api_host=host, api_port=port)
    if not _port_free(settings.api_host, settings.api_port):
        _fail(f"{settings.api_host}:{settings.api_port} is in use; choose another with --port or OMNISTREAM_API_PORT")
    # The factory reads its settings from the environment, here and in every worker process.
    os.environ["OMNISTREAM_API_HOST"] = settings.api_host
    os.environ["OMNISTREAM_API_PORT"] = str(settings.api_port)
    import uvicorn

    uvicorn.run(
        API_APP,
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=workers,
        access_log=False,  # a log line per request costs more than the handler (docs/performance.md)
    )


# --- simulate and replay -------------------------------------------------------------------------------------------


_DURATION_HELP = "Stop after this many seconds (with --out-dir: after seconds × rate events past the opening)."


@app.command()
def simulate(
    rate: Annotated[
        float, typer.Option(min=0.0, help="Events per second after the opening; 0 publishes as fast as it can.")
    ] = DEFAULT_RATE_EPS,
    duration: Annotated[float | None, typer.Option(min=0.0, help=_DURATION_HELP)] = None,
    events: Annotated[int | None, typer.Option(min=0, help="Stop after this many events.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the workload [default: OMNISTREAM_SIM_SEED].")] = None,
    out_dir: Annotated[
        Path | None, typer.Option(help="Write JSONL files, one per topic, here instead of publishing to Kafka.")
    ] = None,
) -> None:
    """Generate the simulated omnichannel workload and publish it to Kafka (or write JSONL files).

    The stream opens with the catalog and the opening stock, published as fast as the broker takes them; the
    traffic after that is paced at --rate, dated by the wall clock. Without --duration or --events it runs until
    Ctrl-C, which ends the stream after everything sent so far is acknowledged.
    """
    settings = _settings(sim_seed=seed)
    if duration is not None and events is not None:
        _fail("give --duration or --events, not both")
    if out_dir is not None and duration is None and events is None:
        _fail("--out-dir needs --duration or --events: a file cannot grow forever")
    if out_dir is None:
        _require_broker(settings)
    from sim import publish as sim_publish
    from sim.timestamps import rfc3339_ms

    params: dict[str, float] = {"events_per_s": rate} if rate > 0 else {}  # the spacing of event times
    if out_dir is None and rate > 0:
        params["start_ts"] = time.time()  # live traffic is dated now, so lag metrics mean something
    workload = _workload(settings.sim_seed, **params)
    counts = _Counts()
    with _GracefulStop() as stop, _progress(events) as advance:
        stream = stop.guard(counts.tally(workload.records(events), advance))
        if out_dir is not None:
            opening = _Opening(stream, rfc3339_ms(workload.start_ts + 1.0))
            rest: Iterator[SimRecord] = opening.rest()
            if duration is not None:
                # Event times are not monotonic (late and early events), so the count stands for the duration.
                rest = itertools.islice(rest, round(duration * workload.events_per_s))
            sim_publish.write_jsonl(itertools.chain(opening, rest), out_dir)
        else:
            if duration is not None:
                stream = _until_wall_time(stream, time.monotonic() + duration)
            publisher = sim_publish.KafkaPublisher(settings.kafka_brokers)
            names = {topic: settings.topic(topic) for topic in Topic}
            opening = _Opening(stream, rfc3339_ms(workload.start_ts + 1.0))
            try:
                publisher.publish(opening, names)  # the catalog and opening stock, unpaced
                publisher.publish(opening.rest(), names, rate)
            except sim_publish.PublishError as ex:
                _fail(f"publishing to {settings.kafka_brokers} failed: {ex}")
    if stop.requested:
        console.print("stopped: everything sent was acknowledged")
    _print_counts(counts, f"written to {out_dir}" if out_dir else f"published to {settings.kafka_brokers}")


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="JSONL file: one raw message value per line.")],
    topic: Annotated[str, typer.Option(help="Topic: `inventory`, or a full name such as `omni.inventory`.")],
    rate: Annotated[float, typer.Option(min=0.0, help="Events per second; 0 publishes as fast as it can.")] = 0.0,
) -> None:
    """Publish a JSONL file of raw events to one topic, keyed as the contract says."""
    settings = _settings()
    if not file.is_file():
        _fail(f"no such file: {file}")
    chosen = _resolve_topic(topic, settings)
    _require_broker(settings)
    from sim import publish as sim_publish

    try:
        records = list(sim_publish.jsonl_records(file, chosen))  # a bad line stops us before anything is sent
    except (OSError, ValueError) as ex:
        _fail(f"cannot read {file}: {ex}")
    publisher = sim_publish.KafkaPublisher(settings.kafka_brokers)
    counts = _Counts()
    with _GracefulStop() as stop, _progress(len(records)) as advance:
        try:
            # publish() waits for every acknowledgement before it returns, also when Ctrl-C ended the stream early.
            published = publisher.publish(stop.guard(counts.tally(records, advance)), {chosen: settings.topic(chosen)},
                                          rate)  # fmt: skip
        except sim_publish.PublishError as ex:
            _fail(f"publishing to {settings.kafka_brokers} failed: {ex}")
    sent = sum(published.values())
    note = f" (stopped early: {len(records) - sent:,} not sent)" if stop.requested else ""
    console.print(f"published {sent:,} events from {file} to {settings.topic(chosen)}{note}", highlight=False)


class _GracefulStop:
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

    def __enter__(self) -> _GracefulStop:
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


class _Opening:
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
class _Counts:
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


def _until_wall_time(records: Iterator[SimRecord], deadline: float) -> Iterator[SimRecord]:
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
def _progress(total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress display on stderr; yields `advance(n)`."""
    if total is None:
        columns = [TextColumn("events"), TextColumn("{task.completed:,.0f}"), _RateColumn(), TimeElapsedColumn()]
    else:
        columns = [TextColumn("events"), BarColumn(), MofNCompleteColumn(), _RateColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err_console) as bar:
        task = bar.add_task("events", total=total)
        yield lambda n: bar.advance(task, n)


def _print_counts(counts: _Counts, title: str) -> None:
    table = Table(title=title)
    for column in ("topic", "events", "duplicates", "malformed"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for name in sorted(counts.total):
        table.add_row(name, f"{counts.total[name]:,}", f"{counts.duplicates.get(name, 0):,}",
                      f"{counts.malformed.get(name, 0):,}")  # fmt: skip
    table.add_row("[bold]total[/]", f"{sum(counts.total.values()):,}", f"{sum(counts.duplicates.values()):,}",
                  f"{sum(counts.malformed.values()):,}")  # fmt: skip
    console.print(table)


# --- schema --------------------------------------------------------------------------------------------------------


@app.command()
def schema(
    topic: Annotated[str | None, typer.Option(help="One input topic (`inventory` or `omni.inventory`).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write it to this file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of the input events: of all topics (keyed by topic), or of one."""
    settings = _settings()
    from events.decode import EVENT_TYPES
    from events.schema import json_schema

    chosen = None if topic is None else _resolve_topic(topic, settings)
    if chosen is not None and chosen not in EVENT_TYPES:
        _fail(f"{chosen.value!r} is an output topic; schemas exist for {', '.join(t.value for t in EVENT_TYPES)}")
    text = json.dumps(json_schema(chosen), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as ex:
        _fail(f"cannot write {out}: {ex.strerror}")
    err_console.print(f"wrote {out}", markup=False, highlight=False)


if __name__ == "__main__":
    app()
