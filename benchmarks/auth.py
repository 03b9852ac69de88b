"""What the API-key check costs: the inventory and recommendations endpoints with auth on, against the same
endpoints without it, and against the bare FastAPI + Redis route (benchmarks/bare_app.py).

Variants, each one uvicorn worker on the same Redis and the same data, measured in alternating rounds
(A B C A B C ...) because the machine is shared and drifts; each figure is the median over rounds:

- `before`: the API of a tree without the check (`--before DIR`, e.g. an export of the commit before
  auth came: `git archive <commit> | tar -x -C DIR`); without `--before`, this tree with
  `OMNISTREAM_AUTH_ENABLED=false`, which does not install the middleware at all;
- `auth`: this tree, auth on, every request carrying a valid key (the key cache warm, as in service);
- `bare`: the bare route, the baseline the endpoints' ratios are quoted against.

Per variant and endpoint: the most requests/s (closed loop, 32 connections), the server's CPU time per
request meanwhile, and p50/p99 at half of that rate (open loop). Written to benchmarks/results/auth.json;
prints a table.

    python benchmarks/auth.py --before /tmp/omnistream-before --seconds 6 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import http_load
from benchmarks.inventory import separate_cores
from benchmarks.recommend import seed_stock
from flows.launcher import settings_env
from omnistream.settings import Settings
from omnistream.stack import free_port, start_broker, start_redis
from state.api_keys import KeyStore
from state.connection import connect

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "auth.json"
N_SKUS = 20_000


def start(app: str, settings: Settings, cwd: Path, extra_env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """One uvicorn worker serving `app` from the tree at `cwd`; its port once it answers."""
    port = free_port()
    env = {**os.environ, **settings_env(settings), **extra_env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", app, "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1).read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app} in {cwd} did not start")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def figures(
    pid: int, port: int, paths: list[str], headers: dict[str, str], seconds: float, connections: int
) -> dict[str, Any]:
    """Closed loop (most req/s, and the server's CPU per request meanwhile), then open loop at half that rate.

    The server's CPU time per answered request is what its capacity is on a machine of its own
    (one worker: 1 / CPU per request); unlike req/s, it barely moves when other processes take the
    cores, so it is the steadier before/after comparison on a shared machine.
    """
    with separate_cores(pid) as cores:
        cpu_before = cpu_s(pid)
        peak = http_load.run(http_load.closed_loop("127.0.0.1", port, paths, connections, seconds, headers))
        cpu_per_request_us = (cpu_s(pid) - cpu_before) / max(1, peak.requests) * 1e6
        half = http_load.run(
            http_load.open_loop("127.0.0.1", port, paths, peak.rate / 2, seconds, connections, headers)
        )
    return {"max": peak.as_dict() | {"cpu_per_request_us": cpu_per_request_us}, "half_load": half.as_dict(),
            "cores": cores}  # fmt: skip


def middleware_cost_us(key: str, settings: Settings, n: int = 200_000) -> dict[str, float]:
    """CPU µs one request spends in the key check (warm cache), timed in process around a no-op app.

    The check as it runs in the API (`ApiKeyAuth` with the app's `KeyCache` and `RateLimiter`);
    the inner app only sends nothing, so the difference to calling that app directly is the check.
    """
    import asyncio

    from fastapi import FastAPI

    from serving.auth.keys import KeyCache
    from serving.auth.middleware import ApiKeyAuth
    from serving.auth.rate_limit import RateLimiter
    from state.api_keys import KeyLookup
    from state.connection import connect_async

    async def noop(scope: Any, receive: Any, send: Any) -> None:
        return None

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    async def measure() -> dict[str, float]:
        api = FastAPI()
        client = connect_async(settings.redis.url, timeout_s=1.0)
        api.state.key_cache = KeyCache(KeyLookup(client), ttl_s=3600.0)
        auth = ApiKeyAuth(noop, api, RateLimiter(1e12, 1.0))
        scope = {"type": "http", "method": "GET", "path": "/v1/inventory/SKU-0000001", "query_string": b"",
                 "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*"),
                             (b"authorization", f"Bearer {key}".encode())]}  # fmt: skip
        await auth(dict(scope), receive, send)  # warms the cache (one HGET)
        timings = {}
        for name, app in (("without", noop), ("with", auth)):
            started = time.process_time()
            for _ in range(n):
                await app(dict(scope), receive, send)
            timings[name] = (time.process_time() - started) / n * 1e6
        await client.aclose()
        return {"check_us": timings["with"] - timings["without"], "noop_us": timings["without"]}

    return asyncio.run(measure())


def asgi_cpu(tree: Path, env: dict[str, str], key: str, settings: Settings, requests: int) -> dict[str, float]:
    """CPU µs per request of the ASGI app of `tree`, driven in process (benchmarks/asgi_cpu.py)."""
    script = ROOT / "benchmarks" / "asgi_cpu.py"
    out = subprocess.run(
        [sys.executable, str(script), "--requests", str(requests), *(["--key", key] if key else [])],
        env={**os.environ, **settings_env(settings), **env}, cwd=tree, capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def median_of(runs: list[dict[str, Any]], phase: str, field: str) -> float:
    return float(statistics.median(run[phase][field] or 0.0 for run in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, default=None, help="a tree without the auth check")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--asgi-requests", type=int, default=20_000, help="requests per in-process round")
    args = parser.parse_args()
    console = Console(width=150)

    redis_service, broker = start_redis(), start_broker()
    settings = Settings(redis_url=redis_service.address, kafka_brokers=broker.address, flow_metrics_port=0,
                        api_redis_timeout_ms=1000, auth_rate_per_s=10_000_000.0)  # fmt: skip
    seed_stock(settings, N_SKUS)
    client = connect(settings.redis.url)
    key = KeyStore(client).create("admin", "benchmark").key
    client.close()

    check = middleware_cost_us(key, settings)
    console.print(f"the key check alone: {check['check_us']:.2f} µs CPU per request (warm cache, in process)")
    before_tree = args.before or ROOT
    before_env = {"PYTHONPATH": str(args.before)} if args.before else {"OMNISTREAM_AUTH_ENABLED": "false"}
    in_process: dict[str, list[dict[str, float]]] = {"before": [], "auth": []}
    for round_no in range(args.rounds):
        console.print(f"in process, round {round_no + 1}/{args.rounds}")
        in_process["before"].append(asgi_cpu(before_tree, before_env, "", settings, args.asgi_requests))
        in_process["auth"].append(asgi_cpu(ROOT, {}, key, settings, args.asgi_requests))
    asgi = {
        variant: {kind: float(statistics.median(r[kind] for r in rounds)) for kind in rounds[0]}
        for variant, rounds in in_process.items()
    }
    for kind in asgi["auth"]:
        console.print(f"in process, {kind}: {asgi['before'][kind]:.1f} µs CPU per request before, "
                      f"{asgi['auth'][kind]:.1f} with the key check: "
                      f"{asgi['before'][kind] / asgi['auth'][kind]:.1%} of the capacity kept")  # fmt: skip

    rng = random.Random(7)
    skus = [f"SKU-{int(N_SKUS * rng.random() ** 3):07d}" for _ in range(2000)]
    endpoints = {
        "inventory": [f"/v1/inventory/{sku}" for sku in skus],
        "recommendations": [f"/v1/recommendations?session_id=S-{n}&sku={sku}" for n, sku in enumerate(skus)],
        "bare": [f"/bare/{sku}" for sku in skus],
    }
    variants = {
        "before": ("serving.app:create_app", before_tree, before_env, {}),
        "auth": ("serving.app:create_app", ROOT, {}, {"Authorization": f"Bearer {key}"}),
        "bare": ("benchmarks.bare_app:create_app", ROOT, {}, {}),
    }
    servers = {name: start(app, settings, cwd, env) for name, (app, cwd, env, _) in variants.items()}
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for round_no in range(args.rounds):
            console.print(f"round {round_no + 1}/{args.rounds}")
            for name, (_, _, _, headers) in variants.items():
                for endpoint in ("bare",) if name == "bare" else ("inventory", "recommendations"):
                    proc, port = servers[name]
                    result = figures(proc.pid, port, endpoints[endpoint], headers, args.seconds, args.connections)
                    runs.setdefault(f"{name}/{endpoint}", []).append(result)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)
        broker.stop()
        redis_service.stop()

    summary: dict[str, Any] = {}
    for label, rounds in runs.items():
        summary[label] = {
            "max_rate": median_of(rounds, "max", "rate"),
            "cpu_per_request_us": median_of(rounds, "max", "cpu_per_request_us"),
            "max_errors": median_of(rounds, "max", "errors"),
            "half_load_rate": median_of(rounds, "half_load", "offered_rate"),
            "half_p50_ms": median_of(rounds, "half_load", "p50_ms"),
            "half_p99_ms": median_of(rounds, "half_load", "p99_ms"),
        }
    bare = summary["bare/bare"]["max_rate"]
    for endpoint in ("inventory", "recommendations"):
        after, before = summary[f"auth/{endpoint}"], summary[f"before/{endpoint}"]
        after["kept_of_before"] = after["max_rate"] / before["max_rate"]
        after["cpu_capacity_kept"] = before["cpu_per_request_us"] / after["cpu_per_request_us"]
        for row in (after, before):
            row["ratio_to_bare"] = row["max_rate"] / bare
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary,
                                   "key_check_alone": check, "in_process_cpu_us": asgi,
                                   "in_process_rounds": in_process, "rounds": runs}, indent=2))  # fmt: skip

    table = Table(title="API with and without the key check (medians over rounds)")
    for column in ("variant/endpoint", "max req/s", "÷ bare", "kept", "CPU µs/req", "CPU capacity kept",
                   "half-load p50 ms", "half-load p99 ms"):  # fmt: skip
        table.add_column(column)
    for label, row in summary.items():
        table.add_row(label, f"{row['max_rate']:,.0f}", f"{row.get('ratio_to_bare', 1.0):.2f}",
                      f"{row['kept_of_before']:.1%}" if "kept_of_before" in row else "",
                      f"{row['cpu_per_request_us']:.0f}",
                      f"{row['cpu_capacity_kept']:.1%}" if "cpu_capacity_kept" in row else "",
                      f"{row['half_p50_ms']:.2f}", f"{row['half_p99_ms']:.2f}")  # fmt: skip
    console.print(table)
    console.print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
