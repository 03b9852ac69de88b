"""Prometheus metrics of the API: requests by route template, method and status; latency by route;
garbage-collection pauses by generation.

The middleware is pure ASGI: `BaseHTTPMiddleware` runs each request through an extra task and
memory streams, a large cost next to a handler that returns stored bytes (docs/performance.md: the
framework dominates). Labels use the matched route's template (`serving.route_label`), never
the raw path, so the series stay bounded whatever callers send; unmatched paths share one
label. Each app has its own `CollectorRegistry` (with the process, platform and GC
collectors), so several apps in one process (tests) don't collide on metric names.
"""

from __future__ import annotations

import gc
from bisect import bisect_left
from collections.abc import Iterator
from time import perf_counter

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.route_label import RouteLabels

# A route answers from memory in well under a millisecond; the top buckets show Redis trouble
# (the API's Redis budget is ~80 ms) and anything pathological.
LATENCY_BUCKETS_S = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
# A young collection takes well under a millisecond; a full one walks everything the process holds.
GC_PAUSE_BUCKETS_S = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _Latency:
    """One histogram of durations: a count per bucket (the last one is +Inf) and the sum."""

    __slots__ = ("counts", "sum_s")

    def __init__(self, bounds: int = len(LATENCY_BUCKETS_S)) -> None:
        self.counts = [0] * (bounds + 1)
        self.sum_s = 0.0


class ApiMetrics:
    """The API's request counter and latency histogram, in a registry of their own.

    Recording is plain arithmetic on dicts and lists, folded into Prometheus families only
    when scraped: prometheus_client's `labels()` plus a lock per sample cost several µs a
    request (docs/performance.md: keep the API's per-request work small). Every request is handled
    on the event loop's thread, so nothing needs a lock.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_counts: dict[tuple[str, str, int], int] = {}
        self._latencies: dict[str, _Latency] = {}
        self._gc_pauses = [_Latency(len(GC_PAUSE_BUCKETS_S)) for _ in range(3)]
        self._gc_started = 0.0
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def time_collections(self) -> None:
        """Time every garbage collection from now on: each request in flight waits it out (a p99 suspect)."""
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def close(self) -> None:
        """Stop timing collections (the app shuts down; tests build several apps in one process)."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = perf_counter()
            return
        pause_s = perf_counter() - self._gc_started
        pauses = self._gc_pauses[min(info.get("generation", 2), 2)]
        pauses.counts[bisect_left(GC_PAUSE_BUCKETS_S, pause_s)] += 1
        pauses.sum_s += pause_s

    def observe(self, route: str, method: str, status: int, duration_s: float) -> None:
        """Count one answered request and record its latency."""
        key = (route, method, status)
        self._request_counts[key] = self._request_counts.get(key, 0) + 1
        latency = self._latencies.get(route)
        if latency is None:
            latency = self._latencies[route] = _Latency()
        latency.counts[bisect_left(LATENCY_BUCKETS_S, duration_s)] += 1  # le: upper bounds are inclusive
        latency.sum_s += duration_s

    def collect(self) -> Iterator[Metric]:
        """Prometheus families of what was recorded (the registry calls this on each scrape)."""
        requests = CounterMetricFamily(
            "omnistream_api_requests",
            "HTTP requests answered, by route template, method and status.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), count in list(self._request_counts.items()):
            requests.add_metric([route, method, str(status)], count)
        yield requests
        durations = HistogramMetricFamily(
            "omnistream_api_request_duration_seconds",
            "Time from receiving a request to sending its last byte, by route template.",
            labels=["route"],
        )
        for route, latency in list(self._latencies.items()):
            durations.add_metric([route], _cumulative(LATENCY_BUCKETS_S, latency), latency.sum_s)
        yield durations
        pauses = HistogramMetricFamily(
            "omnistream_api_gc_pause_seconds",
            "Garbage-collection pauses of the API process (every request in flight waits), by generation.",
            labels=["generation"],
        )
        for generation, latency in enumerate(self._gc_pauses):
            pauses.add_metric([str(generation)], _cumulative(GC_PAUSE_BUCKETS_S, latency), latency.sum_s)
        yield pauses

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


def _cumulative(bounds: tuple[float, ...], latency: _Latency) -> list[tuple[str, float]]:
    """A histogram's (le, cumulative count) pairs, +Inf last."""
    cumulative, buckets = 0, []
    for bound, count in zip((*bounds, float("inf")), latency.counts, strict=True):
        cumulative += count
        buckets.append((_bound_label(bound), float(cumulative)))
    return buckets


def _bound_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class MetricsMiddleware:
    """Pure ASGI middleware recording every HTTP request into `metrics`."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._labels = RouteLabels()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        # An exception that escapes before the response starts becomes a 500 further out.
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            # The router (or a fast path) recorded the matched route in the shared scope.
            route = self._labels.of(scope)
            method = scope["method"]
            self.metrics.observe(route, method if method in _KNOWN_METHODS else "OTHER", status, perf_counter() - start)


router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def read_metrics(request: Request) -> Response:
    """The API's Prometheus metrics."""
    metrics: ApiMetrics = request.app.state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
