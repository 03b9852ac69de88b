"""A small HTTP/1.1 load generator for the benchmarks: keep-alive GETs over raw asyncio streams.

The benchmark machine has 2 cores, so the client must cost far less than the server it
measures: requests are pre-encoded bytes, and a response is parsed only as far as its status
line and `Content-Length` (chunked bodies are skipped, for completeness).

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
import contextlib
import json
import math
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

_T = TypeVar("_T")
_HEADER_END = b"\r\n\r\n"
_RECONNECT_PAUSE_S = 0.01  # after a refused connection: don't spin on a dead server
_DRAIN_S = 1.0  # open loop: how long in-flight requests may finish after the run


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


class _Connection:
    """One keep-alive connection; `get` sends a pre-encoded request and returns the status."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, request: bytes) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader = self._reader
        assert reader is not None
        self._writer.write(request)
        head = await reader.readuntil(_HEADER_END)
        status = int(head[9:12])
        lowered = head.lower()
        at = lowered.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lowered.index(b"\r\n", at + 2)
            length = int(lowered[at + 17 : end])
            if length:
                await reader.readexactly(length)
        elif b"\r\ntransfer-encoding: chunked" in lowered:
            await _skip_chunked(reader)
        elif status >= 200 and status not in (204, 304):
            raise ValueError("response without Content-Length or chunked body")
        if b"\r\nconnection: close" in lowered:
            self.close()
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def _skip_chunked(reader: asyncio.StreamReader) -> None:
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        await reader.readexactly(size + 2)  # the chunk and its CRLF; the last one is "0\r\n\r\n"
        if size == 0:
            return


def _requests(
    host: str, port: int, path_or_paths: str | Sequence[str], headers: Mapping[str, str] | None = None
) -> list[bytes]:
    paths = [path_or_paths] if isinstance(path_or_paths, str) else list(path_or_paths)
    if not paths:
        raise ValueError("give at least one path")
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return [f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode() for path in paths]


def _percentile_ms(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list of seconds (`q` in 0..100), in ms; None if empty."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))] * 1000, 3)


class _Tally:
    def __init__(self) -> None:
        self.latencies_s: list[float] = []
        self.errors = 0
        self.statuses: dict[int, int] = {}

    def answered(self, status: int, latency_s: float) -> None:
        self.latencies_s.append(latency_s)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if not 200 <= status < 300:
            self.errors += 1

    def result(self, mode: str, connections: int, duration_s: float, **extra: Any) -> LoadResult:
        ordered = sorted(self.latencies_s)
        answered = len(ordered) - extra.get("unsent", 0)
        return LoadResult(
            mode=mode,
            connections=connections,
            duration_s=round(duration_s, 3),
            requests=answered,
            errors=self.errors,
            rate=round(answered / duration_s, 1) if duration_s > 0 else 0.0,
            p50_ms=_percentile_ms(ordered, 50),
            p99_ms=_percentile_ms(ordered, 99),
            max_ms=_percentile_ms(ordered, 100),
            statuses=dict(sorted(self.statuses.items())),
            **extra,
        )


async def closed_loop(
    host: str,
    port: int,
    path_or_paths: str | Sequence[str],
    connections: int,
    duration_s: float,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """Drive `connections` keep-alive connections as fast as the server answers, for `duration_s`.

    Paths are cycled through, the connections starting evenly spread over them. (Starting one
    path apart, they walked the list in lockstep: every path arrived as a burst of
    `connections` identical requests at once, which no storefront's traffic looks like, and
    which a server's cache of shared documents meets as a herd of simultaneous misses.)
    """
    requests = _requests(host, port, path_or_paths, headers)
    tally = _Tally()
    clock = time.perf_counter
    deadline = clock() + duration_s

    async def drive(index: int) -> None:
        conn = _Connection(host, port)
        n = index * len(requests) // connections
        try:
            while (start := clock()) < deadline:
                request = requests[n % len(requests)]
                n += 1
                try:
                    status = await conn.get(request)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                    tally.errors += 1
                    conn.close()
                    await asyncio.sleep(_RECONNECT_PAUSE_S)
                    continue
                tally.answered(status, clock() - start)
        finally:
            conn.close()

    began = clock()
    await asyncio.gather(*(drive(i) for i in range(connections)))
    return tally.result("closed", connections, clock() - began)


async def open_loop(
    host: str,
    port: int,
    paths: str | Sequence[str],
    rate: float,
    duration_s: float,
    connections: int,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """Offer `rate` requests per second for `duration_s`, spread over `connections` connections.

    Request i is due at `start + i / rate` and goes to connection `i % connections`. A
    connection sends each request at its due time or, when it is behind, as soon as the
    previous answer arrives; latency is measured from the due time either way. Give enough
    connections that `connections / rate` exceeds the latency you expect, or the connections
    themselves become the queue (that queueing still shows in the latencies).
    """
    if rate <= 0 or connections < 1:
        raise ValueError("rate must be > 0 and connections >= 1")
    requests = _requests(host, port, paths, headers)
    total = int(rate * duration_s)
    tally = _Tally()
    clock = time.perf_counter
    start = clock() + 0.05  # let every connection reach its first sleep before the first due time
    end = start + duration_s
    unsent = 0

    async def drive(index: int) -> None:
        nonlocal unsent
        conn = _Connection(host, port)
        try:
            for i in range(index, total, connections):
                due = start + i / rate
                now = clock()
                if now >= end:
                    # Never sent within the run: charge each the wait it had so far.
                    late = range(i, total, connections)
                    unsent += len(late)
                    tally.latencies_s.extend(max(0.0, now - (start + j / rate)) for j in late)
                    return
                if due > now:
                    await asyncio.sleep(due - now)
                try:
                    status = await conn.get(requests[i % len(requests)])
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                    tally.errors += 1
                    conn.close()
                    continue
                tally.answered(status, clock() - due)
        finally:
            conn.close()

    tasks = [asyncio.ensure_future(drive(i)) for i in range(min(connections, max(total, 1)))]
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, end - clock()) + _DRAIN_S)
    for task in pending:  # stuck past the drain: the server never answered these
        task.cancel()
        tally.errors += 1
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*pending, return_exceptions=True)
    return tally.result("open", connections, duration_s, offered_rate=float(rate), unsent=unsent)


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run `coro` on uvloop when it is installed (a cheaper client), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


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
