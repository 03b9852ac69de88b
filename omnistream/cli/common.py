"""What every command group of the CLI shares: the consoles, settings, one-line errors and port checks.

A user's mistake is printed here as one red line and a non-zero exit (`fail`), so every
command words and exits its errors the same way.
"""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypedDict, Unpack

import typer
from rich.console import Console

from events.topics import Topic
from omnistream.settings import Settings, settings_or_exit

if TYPE_CHECKING:
    from sim.workload import Workload

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


def error_line(message: str) -> None:
    """`message` in red on stderr, printed as given."""
    # markup off: messages quote user input and settings such as "host:port[,host:port…]"
    err_console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop the command with one line naming what went wrong."""
    error_line(f"omnistream: {message}")
    raise typer.Exit(code)


def load_settings(**overrides: object) -> Settings:
    """The settings, with the options that were given; a bad value exits with one line per variable."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return settings_or_exit(**given)
    except SystemExit as ex:
        for line in str(ex.code).splitlines():
            error_line(line)
        raise typer.Exit(2) from None


def recovery_enabled(settings: Settings) -> bool:
    """Whether flows keep Bytewax recovery state (OMNISTREAM_RECOVERY_DIR="" turns it off)."""
    return settings.recovery.dir is not None


def resolve_topic(name: str, settings: Settings) -> Topic:
    """`name` as a contract topic: unprefixed (`inventory`) or full (`omni.inventory`)."""
    with contextlib.suppress(ValueError):
        return Topic(name)
    with contextlib.suppress(ValueError):
        return Topic.from_name(name, settings.topic.prefix)
    known = ", ".join(t.value for t in Topic)
    fail(f"unknown topic {name!r}; expected one of {known}, optionally prefixed with {settings.topic.prefix!r}")


def require_broker(settings: Settings) -> None:
    """Stop with what to do when no broker answers: a command that publishes would otherwise hang."""
    from omnistream.stack import brokers_reachable

    if not brokers_reachable(settings.kafka.brokers):
        fail(
            f"no Kafka broker answers at {settings.kafka.brokers} (OMNISTREAM_KAFKA_BROKERS); "
            "start one with `omnistream broker`, or run everything with `omnistream up`"
        )


@contextlib.contextmanager
def terminate_like_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP stop a command the way Ctrl-C does: one shutdown path for all three."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (with SO_REUSEADDR, as uvicorn binds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports_from(host: str, count: int) -> int:
    """The first of `count` consecutive free ports (a flow process listens on its port plus its index)."""
    from omnistream.stack import free_port

    while True:
        first = free_port()
        if first + count <= 65536 and all(port_free(host, first + i) for i in range(count)):
            return first


def reachable_host(host: str) -> str:
    """The address to reach, from this machine, a server listening on `host`."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def tail(path: Path | None, lines: int = 15) -> str:
    """The last `lines` lines of a log, or "" when there is none: shown under an error, never raising."""
    if path is None:
        return ""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Pacing(TypedDict, total=False):
    """How a workload spaces its event times; a key left out keeps `sim.workload.Workload`'s default."""

    events_per_s: float
    start_ts: float


def simulated_workload(seed: int, **pacing: Unpack[Pacing]) -> Workload:
    """The simulated workload of `seed`; imported on use, as only `up` and `simulate` need it."""
    from sim.workload import Workload

    # The customers flow's journeys and consent changes are on here (off in the benchmarks' streams), 8 weeks
    # of store sales before the start (the demand flow forecasts and flags risers at once), and the
    # card-fraud benchmark's scenarios, so the demo's fraud flow sees skimmed terminals and leaked cards.
    return Workload(seed=seed, customer_journey_rate=0.05, consent_rate=0.005, demand_history_days=56,
                    amount_outlier_rate=0.001, compromised_terminal_rate=0.0002, compromised_card_rate=0.001,
                    **pacing)  # fmt: skip
