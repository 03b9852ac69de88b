"""A real three-node Redis Cluster on free loopback ports, for the tests that check Cluster-safe state.

Three `redis-server --cluster-enabled yes` masters (no replicas), joined with
`redis-cli --cluster create`, diskless, in a temporary directory; `stop()`
ends them and removes it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from omnistream.stack import free_port, port_open, redis_server_binary


def _cluster_ports(n: int) -> list[int]:
    """`n` free ports whose cluster-bus ports (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port < 55_000 and port not in ports and not port_open("127.0.0.1", port + 10_000):
            ports.append(port)
    return ports


@dataclass
class LocalRedisCluster:
    """The nodes of a cluster this process started."""

    ports: list[int]
    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The `OMNISTREAM_REDIS_URL` of the cluster (`state.connection`)."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def client(self) -> redis.RedisCluster:
        return redis.RedisCluster(host="127.0.0.1", port=self.ports[0])

    def flush(self) -> None:
        for port in self.ports:
            redis.Redis(port=port).flushall()

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis_cluster(nodes: int = 3) -> LocalRedisCluster:
    """Start `nodes` cluster-enabled masters, create the cluster, and wait until every node says `ok`."""
    if shutil.which("redis-cli") is None:
        raise RuntimeError("redis-cli is not installed (it comes with redis-server, or redis-tools)")
    cluster = LocalRedisCluster(_cluster_ports(nodes), Path(tempfile.mkdtemp(prefix="omnistream-cluster-")))
    try:
        for port in cluster.ports:
            node_dir = cluster.workdir / str(port)
            node_dir.mkdir()
            command = [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                       "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--appendonly", "no",
                       "--cluster-node-timeout", "5000", "--dir", str(node_dir), "--logfile", "redis.log"]  # fmt: skip
            proc = subprocess.Popen(
                command, cwd=node_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0
            )
            cluster.procs.append(proc)
        deadline = time.monotonic() + 10
        while not all(port_open("127.0.0.1", port) for port in cluster.ports):
            if time.monotonic() > deadline:
                raise RuntimeError("cluster nodes did not start")
            time.sleep(0.05)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in cluster.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not all(redis.Redis(port=p).cluster("INFO").get("cluster_state") == "ok" for p in cluster.ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok")
            time.sleep(0.1)
    except BaseException:
        cluster.stop()
        raise
    return cluster
