"""The benchmarks' load generator (`benchmarks/http_load.py`, `benchmarks/loadgen.c`) against a local server.

What the endpoint tables report rests on it: a server pause must be charged to every request it
delayed (open loop, no coordinated omission), statuses and errors counted, bodies of either
framing read whole so keep-alive requests stay in step.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from benchmarks import http_load


class _Server:
    """A keep-alive HTTP/1.1 server on a thread: `/ok`, `/missing` (404), `/chunked`; `pause_s` stalls every answer."""

    def __init__(self) -> None:
        self.pause_until = 0.0
        self.requests = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                wait = self.pause_until - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                path = head.split(b" ", 2)[1]
                if path == b"/chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    writer.write(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                elif path == b"/missing":
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def __enter__(self) -> _Server:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def server() -> Iterator[_Server]:
    with _Server() as running:
        yield running


def test_closed_loop_counts_answers_statuses_and_reads_both_framings(server: _Server) -> None:
    paths = ["/ok", "/chunked", "/missing"]
    result = http_load.run(http_load.closed_loop("127.0.0.1", server.port, paths, 4, 1.0, warmup_s=0.0))
    assert result.mode == "closed" and result.requests > 100
    assert set(result.statuses) == {200, 404}
    # The three paths are cycled: a third of the answers are 404s, and they count as errors.
    assert abs(result.statuses[404] - result.requests / 3) <= 4
    assert result.errors == result.statuses[404]
    assert result.requests == server.requests and result.p99_ms is not None


def test_open_loop_offers_the_rate_and_charges_a_pause_to_every_request_it_delayed(server: _Server) -> None:
    def pause_later() -> None:
        time.sleep(0.8)
        server.pause_until = time.monotonic() + 0.3

    threading.Thread(target=pause_later, daemon=True).start()
    result = http_load.run(http_load.open_loop("127.0.0.1", server.port, "/ok", 500.0, 2.0, 8, warmup_s=0.0))
    assert result.mode == "open" and result.offered_rate == 500.0
    assert result.requests + result.unsent == 1000 and result.errors == 0
    # 0.3 s of 2 s paused: ~150 requests fell due in the pause, each waiting until it ended. A client
    # timing from the send (coordinated omission) would see at most 8 slow requests, one per connection.
    assert result.max_ms is not None and result.max_ms >= 250
    assert result.p99_ms is not None and result.p99_ms >= 100
    assert result.p50_ms is not None and result.p50_ms < 20


def test_the_warm_up_is_served_but_not_measured(server: _Server) -> None:
    server.pause_until = time.monotonic() + 0.3  # the first 0.3 s of a 0.5-s warm-up: slow, not measured
    result = http_load.run(http_load.open_loop("127.0.0.1", server.port, "/ok", 400.0, 1.0, 8, warmup_s=0.5))
    assert result.requests + result.unsent == 400 and server.requests == 600
    assert result.max_ms is not None and result.max_ms < 100


def test_a_server_that_is_not_there_is_errors_not_a_hang() -> None:
    result = http_load.run(http_load.closed_loop("127.0.0.1", 1, "/ok", 2, 0.3))
    assert result.requests == 0 and result.errors > 0 and result.p99_ms is None
