"""The benchmarks' HTTP load: keep-alive GETs from a small compiled client (`benchmarks/loadgen.c`).

The benchmark machine has 2 cores, so the client must cost far less than the server it
measures, and must not add pauses of its own to the latencies it reports. An asyncio client
did neither: at a few thousand requests per second it took a good part of a core, and its
event loop falling behind was charged to the server (docs/performance.md, "Measuring an
endpoint on two cores"). The C client runs one epoll loop; this module builds it on first use
and keeps the Python interface the benchmarks call.

- `closed_loop`: each connection sends its next request as soon as the last one is answered;
  measures the most the server sustains (req/s) and latency at that load.
- `open_loop`: requests are offered at a fixed rate whatever the server does; latency runs
  from each request's *intended* send time, so a stalled server is charged for the requests
  it delayed (no coordinated omission, as in wrk2).

Ad hoc: `python benchmarks/http_load.py --port 8000 --path /v1/inventory/SKU-1 -c 32 -d 5
[--rate 2000]`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")
_SOURCE = Path(__file__).with_name("loadgen.c")
WARMUP_S = 1.0
"""Seconds of load before the measured window, as wrk2's calibration period: a run's first answers are
the server accepting its connections (a dump of one open loop at 3,000 req/s had half of its answers
over 4 ms in its first 0.2 s), not its steady state at the rate asked."""


@dataclass
class LoadResult:
    """What one run measured. Latencies in milliseconds (None when nothing was answered); `rate` is
    answered requests per second.

    `errors` counts transport failures and non-2xx answers. Open loop only: `offered_rate` and
    `unsent`, requests whose intended time fell in the run but which were never sent because
    the server was too slow; their latency counts as the time they waited (a lower bound).
    """

    mode: str
    connections: int
    duration_s: float
    requests: int
    errors: int
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    offered_rate: float | None = None
    unsent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _requests(
    host: str, port: int, path_or_paths: str | Sequence[str], headers: Mapping[str, str] | None = None
) -> list[bytes]:
    paths = [path_or_paths] if isinstance(path_or_paths, str) else list(path_or_paths)
    if not paths:
        raise ValueError("give at least one path")
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return [f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode() for path in paths]


def loadgen_binary() -> Path:
    """The compiled `loadgen.c`, built with the system's C compiler the first time its source is seen.

    Kept in the temporary directory under the source's hash: a clean clone builds it once, an
    edited source is rebuilt, and nothing built lands in the repository.
    """
    source = _SOURCE.read_bytes()
    binary = Path(tempfile.gettempdir()) / f"omnistream-loadgen-{hashlib.sha256(source).hexdigest()[:16]}"
    if binary.exists():
        return binary
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("the benchmarks' load generator needs a C compiler (apt-get install -y gcc)")
    building = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
    subprocess.run([compiler, "-O2", "-o", str(building), str(_SOURCE)], check=True)
    building.replace(binary)  # atomic: concurrent benchmarks never run a half-written binary
    return binary


async def _loadgen(
    host: str,
    port: int,
    path_or_paths: str | Sequence[str],
    connections: int,
    duration_s: float,
    rate: float,
    headers: Mapping[str, str] | None,
    warmup_s: float,
) -> dict[str, Any]:
    requests = _requests(host, port, path_or_paths, headers)
    args = [str(connections), repr(float(duration_s)), repr(float(rate)), repr(float(warmup_s))]
    process = await asyncio.create_subprocess_exec(
        str(loadgen_binary()), host, str(port), *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate(b"\0".join(requests))
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed (exit {process.returncode})")
    figures: dict[str, Any] = json.loads(out)
    return figures


def _result(mode: str, connections: int, figures: dict[str, Any], **extra: Any) -> LoadResult:
    duration_s = figures["duration_s"]
    answered = figures["requests"]
    return LoadResult(
        mode=mode,
        connections=connections,
        duration_s=round(duration_s, 3),
        requests=answered,
        errors=figures["errors"],
        rate=round(answered / duration_s, 1) if duration_s > 0 else 0.0,
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        max_ms=figures["max_ms"],
        statuses={int(status): count for status, count in sorted(figures["statuses"].items(), key=lambda s: int(s[0]))},
        **extra,
    )


async def closed_loop(
    host: str,
    port: int,
    path_or_paths: str | Sequence[str],
    connections: int,
    duration_s: float,
    headers: Mapping[str, str] | None = None,
    warmup_s: float = WARMUP_S,
) -> LoadResult:
    """Drive `connections` keep-alive connections as fast as the server answers, for `duration_s` after `warmup_s`.

    Paths are cycled through, the connections starting evenly spread over them. (Starting one
    path apart, they walked the list in lockstep: every path arrived as a burst of
    `connections` identical requests at once, which no storefront's traffic looks like, and
    which a server's cache of shared documents meets as a herd of simultaneous misses.)
    """
    figures = await _loadgen(host, port, path_or_paths, connections, duration_s, 0.0, headers, warmup_s)
    return _result("closed", connections, figures)


async def open_loop(
    host: str,
    port: int,
    paths: str | Sequence[str],
    rate: float,
    duration_s: float,
    connections: int,
    headers: Mapping[str, str] | None = None,
    warmup_s: float = WARMUP_S,
) -> LoadResult:
    """Offer `rate` requests per second for `duration_s` after `warmup_s`, spread over `connections` connections.

    Request i is due at `start + i / rate` and goes to connection `i % connections`. A
    connection sends each request at its due time or, when it is behind, as soon as the
    previous answer arrives; latency is measured from the due time either way. Give enough
    connections that `connections / rate` exceeds the latency you expect, or the connections
    themselves become the queue (that queueing still shows in the latencies). The warm-up runs at the
    same rate and is not measured (`WARMUP_S`).
    """
    if rate <= 0 or connections < 1:
        raise ValueError("rate must be > 0 and connections >= 1")
    figures = await _loadgen(host, port, paths, connections, duration_s, rate, headers, warmup_s)
    return _result("open", connections, figures, offered_rate=float(rate), unsent=figures["unsent"])


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run one load run (`closed_loop`, `open_loop`) to its end from synchronous code."""
    return asyncio.run(coro)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--path", action="append", help="path to GET; repeat to cycle through several")
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=5.0, help="seconds")
    parser.add_argument("--rate", type=float, help="requests per second: open loop; without it, closed loop")
    args = parser.parse_args(argv)
    paths = args.path or ["/healthz"]
    if args.rate:
        result = run(open_loop(args.host, args.port, paths, args.rate, args.duration, args.connections))
    else:
        result = run(closed_loop(args.host, args.port, paths, args.connections, args.duration))
    print(json.dumps(result.as_dict()))


if __name__ == "__main__":
    main()
