"""What `omnistream up` runs on this machine: the services, topics, flows, API and simulator, and their stop.

Children are started in order of need (Redis and the broker, then the flows that
write to Redis, then what reads it and what feeds them) and stopped the other way
round, so a flow's final epoch still reaches Redis.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rich.console import Console

from omnistream.cli.common import (
    API_APP,
    LOG_DIR,
    UserError,
    free_ports_from,
    port_free,
    reachable_host,
    recovery_enabled,
    tail,
)
from omnistream.settings import Settings

if TYPE_CHECKING:
    from flows.launcher import FlowRun
    from omnistream.stack import LocalService
    from sim.workload import Workload


@dataclass
class Child:
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


class LocalRun:
    """What `omnistream up` started, and how to stop it: producers first, the services they need last."""

    def __init__(self, settings: Settings, out: Console) -> None:
        self.settings = settings
        self.effective = settings  # with the addresses actually used
        self.out = out
        self.redis: LocalService | None = None
        self.broker: LocalService | None = None
        self.flows: dict[str, FlowRun] = {}
        self.api: Child | None = None
        self.simulator: Child | None = None
        self.new_topics: list[str] = []
        self.console_key: str | None = None  # made by `issue_demo_keys`, shown in the summary
        self.storefront_key: str | None = None  # the simulator's, for its storefront requests

    def say(self, what: str, text: str) -> None:
        self.out.print(f"[bold cyan]{what:<9}[/] {text}", highlight=False, soft_wrap=True)

    def warn(self, text: str) -> None:
        self.out.print(f"[yellow]warning:[/] {text}", highlight=False, soft_wrap=True)

    @property
    def api_base(self) -> str:
        return f"http://{reachable_host(self.effective.api.host)}:{self.effective.api.port}"

    # --- starting ---

    def start_services(self) -> None:
        from omnistream.stack import ensure_broker, ensure_redis

        try:
            self.redis = ensure_redis(self.settings.redis.url)
        except RuntimeError as ex:
            raise UserError(str(ex)) from None
        if self.redis.started_here:
            self.say(
                "redis", f"started redis-server at {self.redis.address} (none at {self.settings.redis.display_url})"
            )
        else:
            self.say("redis", f"using {self.redis.address}")
        try:
            self.broker = ensure_broker(self.settings.kafka.brokers)
        except (RuntimeError, ImportError) as ex:
            raise UserError(f"the local Kafka broker did not start: {ex}") from None
        if self.broker.started_here:
            self.say("kafka", f"started Tansu (in memory) at {self.broker.address} "
                              f"(none at {self.settings.kafka.brokers})")  # fmt: skip
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
            result = create_topics(s.kafka.brokers, s.topic.prefix, s.topic.partitions,
                                   security=s.kafka.security_config())  # fmt: skip
        except KafkaException as ex:
            raise UserError(f"creating topics at {s.kafka.brokers} failed: {ex}") from None
        self.new_topics = sorted(name for name, status in result.items() if status == "created")
        created = len(self.new_topics)
        self.say("topics", f"{created} created, {len(result) - created} already there "
                           f"({s.topic.prefix}*, {s.topic.partitions} partitions)")  # fmt: skip

    def forget_stale_state(self) -> None:
        """Recovery state of topics that are new here points at offsets that do not exist: wipe it.

        That is always so for a broker started here (in memory, empty), and also for a reused broker that was
        restarted empty, e.g. `omnistream broker`. Resuming from such offsets would skip the new input.
        """
        assert self.broker is not None and self.redis is not None
        if not self.new_topics:
            return
        why = "the broker is new" if self.broker.started_here else "its topics were just created"
        directory = self.effective.recovery.dir
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

            client = connect(self.effective.redis.url)
            try:
                cleared = clear_namespace(client)
            finally:
                client.close()
            self.say("redis", f"cleared {cleared} omni:* keys of an earlier run from {self.redis.address} ({why})")

    def _redis_holds_state(self) -> bool:
        import redis

        from state import keys

        client = redis.Redis.from_url(self.effective.redis.url, socket_timeout=2.0)
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
        """Every flow of `flows.registry.FLOWS`, each logging to its own file."""
        from flows.launcher import start_flow
        from flows.metrics import PORTS_PER_FLOW
        from flows.registry import FLOWS

        port, count = self.effective.flow.metrics_port, self.effective.processes
        span = PORTS_PER_FLOW * (len(FLOWS) - 1) + count
        if port and not all(port_free("0.0.0.0", port + i) for i in range(span)):
            new_port = free_ports_from("0.0.0.0", span)
            self.say("flow", f"metrics ports {port}+ are taken; using {new_port}+")
            self.effective = self.effective.model_copy(update={"flow_metrics_port": new_port})
        recovery = recovery_enabled(self.effective)
        s = self.effective
        for name in FLOWS:
            with self._log(name) as log:
                self.flows[name] = start_flow(name, s, recovery=recovery, stdout=log.fileno(),
                                              stderr=subprocess.STDOUT)  # fmt: skip
            self.say("flow", f"{name}: {s.processes} process(es) × {s.workers} worker(s), "
                             f"recovery {s.recovery.dir if recovery else 'off'}")  # fmt: skip

    def start_api(self) -> None:
        from flows.launcher import settings_env

        host, port = self.effective.api.host, self.effective.api.port
        if not port_free(host, port):
            new_port = free_ports_from(host, 1)
            self.say("api", f"port {port} is taken; using {new_port}")
            self.effective = self.effective.model_copy(update={"api_port": new_port})
            port = new_port
        cmd = [sys.executable, "-m", "uvicorn", "--factory", API_APP,
               "--host", host, "--port", str(port), "--no-access-log"]  # fmt: skip
        self.api = self._spawn("api", cmd, {**os.environ, **settings_env(self.effective)})

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> Child:
        with self._log(name) as log:
            # Own process group: Ctrl-C in the terminal reaches only `up`, which then stops children in order.
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, process_group=0)
        return Child(name, proc, LOG_DIR / f"{name}.log")

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

    def issue_demo_keys(self) -> None:
        """A console key for the person at the screen and a storefront key for the simulator (auth on only)."""
        if not self.effective.auth.enabled:
            self.warn("authentication is off (OMNISTREAM_AUTH_ENABLED=false): anyone can call the API")
            return
        from state.api_keys import KeyStore
        from state.connection import connect

        client = connect(self.effective.redis.url)
        try:
            store = KeyStore(client)
            self.console_key = store.create("console", "omnistream up: console").key
            self.storefront_key = store.create("storefront", "omnistream up: simulator storefront").key
        finally:
            client.close()

    def start_simulator(self, rate: float) -> None:
        from flows.launcher import settings_env

        cmd = [sys.executable, "-m", "omnistream.cli", "simulate", "--rate", f"{rate:g}"]
        env = {**os.environ, **settings_env(self.effective)}
        if self.api is not None:  # the simulator also plays a storefront asking for recommendations
            cmd += ["--api", self.api_base]
            if self.storefront_key:
                env["OMNISTREAM_SIM_API_KEY"] = self.storefront_key
            elif not self.effective.auth.enabled:
                env["OMNISTREAM_SIM_API_KEY"] = "auth-off"
        self.simulator = self._spawn("simulator", cmd, env)
        self.say("simulator", f"publishing the catalog and opening stock, then ~{rate:g} events/s "
                              f"(seed {self.effective.sim.seed})")  # fmt: skip

    def wait_opening_loaded(self, workload: Workload, timeout_s: float = 180.0) -> None:
        """Until every catalog SKU has stock in Redis: Kafka, the flow and Redis all work end to end."""
        import redis

        from state import keys

        skus = [product.sku for product in workload.catalog.products]
        client = redis.Redis.from_url(self.effective.redis.url, socket_timeout=2.0)
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
                raise UserError(f"{name} {how} unexpectedly; stopping the rest{where}", details=tail(log))

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


def _http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
