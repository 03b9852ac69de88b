"""`GET /v1/fulfilment/options` on stock the real inventory flow wrote (real broker, Redis, Bytewax)."""

# These tests are about their feature; keys and roles are tests/integration/test_api_auth.py's, so auth is off here.

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from events.topics import Topic
from omnistream.settings import Settings
from serving.app import create_app
from tests.harness.flows import publish, run_to_end

pytestmark = pytest.mark.integration

COSTS = "STORE-01:north=1.0,STORE-02:north=3.0,WH-01:north=7.0"


def _event(event_id: str, type_: str, minute: int, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "type": type_, "ts": f"2026-12-06T09:{minute:02d}:00.000Z", "schema_version": 1,
            **fields}  # fmt: skip


def _receipt(event_id: str, location_id: str, qty: int) -> tuple[Topic, bytes, bytes]:
    event = _event(event_id, "receipt", 0, sku="KETTLE", location_id=location_id, qty=qty)
    return Topic.INVENTORY, b"KETTLE", orjson.dumps(event)


@pytest.fixture
def flow_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"fulfilment_ship_costs": COSTS, "fulfilment_store_safety_stock": 1})


@pytest.fixture
def client(flow_settings: Settings) -> Iterator[TestClient]:
    publish(flow_settings, [_receipt("r1", "STORE-01", 4), _receipt("r2", "WH-01", 30), _receipt("r3", "STORE-02", 1)])
    run_to_end(flow_settings)
    with TestClient(create_app(flow_settings.model_copy(update={"auth_enabled": False}))) as client:
        yield client


def options(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/fulfilment/options", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_store_emptied_by_a_sale_a_moment_ago_is_not_chosen(client: TestClient, flow_settings: Settings) -> None:
    before = options(client, sku="KETTLE", qty=2, ship_to="north")
    assert [s["location_id"] for s in before["choice"]["shipments"]] == ["STORE-01"]
    assert [o["shipments"][0]["location_id"] for o in before["options"]] == ["STORE-01", "WH-01"]

    sale = _event("s1", "sale", 5, store_id="STORE-01", register_id="R1", cashier_id="C1", txn_id="T1",
                  currency="EUR", items=[{"sku": "KETTLE", "qty": 3, "unit_price": 20.0}], total=60.0,
                  payment={"method": "cash"})  # fmt: skip
    publish(flow_settings, [(Topic.POS, b"STORE-01", orjson.dumps(sale))])
    run_to_end(flow_settings)

    after = options(client, sku="KETTLE", qty=2, ship_to="north")
    assert [s["location_id"] for s in after["choice"]["shipments"]] == ["WH-01"]
    assert [o["shipments"][0]["location_id"] for o in after["options"]] == ["WH-01"]


def test_splits_only_when_no_single_source_can_serve(client: TestClient) -> None:
    whole = options(client, sku="KETTLE", qty=30, ship_to="north")
    assert [s["location_id"] for s in whole["choice"]["shipments"]] == ["WH-01"] and not whole["choice"]["split"]
    split = options(client, sku="KETTLE", qty=32, ship_to="north")
    assert [(s["location_id"], s["lines"][0]["qty"]) for s in split["choice"]["shipments"]] == [("STORE-01", 3),
                                                                                             ("WH-01", 29)]  # fmt: skip
    assert split["choice"]["split"] and split["options"] == []


def test_store_safety_stock_keeps_a_last_unit_back(client: TestClient) -> None:
    # STORE-02 holds 1 unit, its safety stock: never offered, even for pick-up there.
    pickup = options(client, sku="KETTLE", qty=1, pickup_at="STORE-02")
    assert pickup["choice"] is None and any("keeps its last 1 units" in r for r in pickup["reasons"])


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"sku": "GHOST", "qty": 1, "ship_to": "north"}, 404, "not_found"),
        ({"sku": "KETTLE", "qty": 0, "ship_to": "north"}, 422, "invalid_parameter"),
        ({"sku": "KETTLE", "ship_to": "north"}, 422, "invalid_parameter"),
        ({"sku": "KETTLE", "qty": 1}, 422, "invalid_parameter"),
        ({"sku": "KETTLE", "qty": 1, "ship_to": "mars"}, 422, "invalid_parameter"),
        ({"lines": "KETTLE:2,KETTLE", "ship_to": "north"}, 422, "invalid_parameter"),
        ({"qty": 1, "ship_to": "north"}, 422, "invalid_parameter"),
        # Declined by the plain-ASGI fast path (serving/fast_paths.py), answered by the FastAPI route:
        ({"sku": "KETTLE", "qty": "two", "ship_to": "north"}, 422, "invalid_parameter"),
        ({"sku": "KETTLE", "qty": 1, "ship_to": ""}, 422, "invalid_parameter"),
    ],
)
def test_bad_parameters_get_a_clear_4xx(client: TestClient, params: dict[str, Any], status: int, code: str) -> None:
    response = client.get("/v1/fulfilment/options", params=params)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_answers_are_counted_under_the_route_whichever_path_answers(client: TestClient) -> None:
    """Well-formed queries are answered ahead of FastAPI's routing, the rest by the route: one metrics label."""
    fast = client.get("/v1/fulfilment/options", params={"sku": "KETTLE", "qty": 1, "ship_to": "north"})
    routed = client.get("/v1/fulfilment/options?sku=KETTLE&sku=KETTLE&qty=1&ship_to=north")  # repeated: the route's
    assert (fast.status_code, routed.status_code) == (200, 200), (fast.text, routed.text)
    assert fast.json() == routed.json()
    metrics = client.get("/metrics").text
    counted = [line for line in metrics.splitlines()
               if line.startswith("omnistream_api_requests_total") and 'route="/v1/fulfilment/options"' in line
               and 'status="200"' in line]  # fmt: skip
    assert counted and float(counted[0].rsplit(" ", 1)[1]) == 2.0, counted
