"""The API's metrics: labelled by route template, one registry per app."""

from __future__ import annotations

import gc

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from serving.metrics import ApiMetrics, MetricsMiddleware
from serving.route_label import UNMATCHED_ROUTE, RouteStamp


def app_with_metrics() -> tuple[FastAPI, ApiMetrics]:
    app = FastAPI()
    metrics = ApiMetrics()
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/things/{thing_id}")
    async def read_thing(thing_id: str) -> dict[str, str]:
        return {"thing_id": thing_id}

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("boom")

    return app, metrics


def count(metrics: ApiMetrics, route: str, method: str, status: str) -> float | None:
    labels = {"route": route, "method": method, "status": status}
    return metrics.registry.get_sample_value("omnistream_api_requests_total", labels)


def test_requests_are_counted_by_route_template_not_raw_path() -> None:
    app, metrics = app_with_metrics()
    with TestClient(app) as client:
        client.get("/things/a")
        client.get("/things/b")
        client.get("/nowhere/1")
        client.get("/nowhere/2")

    assert count(metrics, "/things/{thing_id}", "GET", "200") == 2
    assert count(metrics, UNMATCHED_ROUTE, "GET", "404") == 2
    latency_count = metrics.registry.get_sample_value(
        "omnistream_api_request_duration_seconds_count", {"route": "/things/{thing_id}"}
    )
    assert latency_count == 2


def test_unhandled_exception_counts_as_500() -> None:
    app, metrics = app_with_metrics()
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/fail").status_code == 500

    assert count(metrics, "/fail", "GET", "500") == 1


def test_unknown_methods_share_one_label() -> None:
    app, metrics = app_with_metrics()
    with TestClient(app) as client:
        client.request("BREW", "/things/a")

    assert count(metrics, "/things/{thing_id}", "OTHER", "405") == 1


def test_two_apps_keep_separate_registries() -> None:
    first, first_metrics = app_with_metrics()
    second, second_metrics = app_with_metrics()
    with TestClient(first) as client:
        client.get("/things/a")
    with TestClient(second) as client:
        client.get("/things/a")

    assert count(first_metrics, "/things/{thing_id}", "GET", "200") == 1
    assert count(second_metrics, "/things/{thing_id}", "GET", "200") == 1


def test_framework_pages_are_counted_by_their_path() -> None:
    app, metrics = app_with_metrics()
    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 200

    assert count(metrics, "/openapi.json", "GET", "200") == 1
    assert count(metrics, "/docs", "GET", "200") == 1


def test_a_request_answered_ahead_of_routing_is_counted_under_the_route_it_stands_in_for() -> None:
    stamp = RouteStamp("/things/{thing_id}")
    metrics = ApiMetrics()

    async def fast_path(scope: Scope, receive: Receive, send: Send) -> None:
        stamp.stamp(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    client = TestClient(MetricsMiddleware(fast_path, metrics))  # no `with`: no lifespan for a bare ASGI app
    client.get("/things/a")
    client.get("/things/b")

    assert count(metrics, "/things/{thing_id}", "GET", "200") == 2
    assert count(metrics, UNMATCHED_ROUTE, "GET", "200") is None


def test_garbage_collections_are_timed_by_generation_until_closed() -> None:
    metrics = ApiMetrics()
    metrics.time_collections()
    try:
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
    finally:
        metrics.close()
    gc.collect(2)  # after close: not counted

    def pauses(generation: str) -> float | None:
        return metrics.registry.get_sample_value("omnistream_api_gc_pause_seconds_count", {"generation": generation})

    assert pauses("2") is not None and pauses("2") >= 2  # and any the interpreter ran by itself
    assert pauses("0") is not None and pauses("0") >= 1  # and any the interpreter ran by itself
    total = metrics.registry.get_sample_value("omnistream_api_gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None and total > 0
