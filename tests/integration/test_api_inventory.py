"""The inventory API against a real Redis, with documents written the way the inventory flow writes them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from events.stock import LocationStock, SkuStock
from omnistream.settings import Settings
from serving.app import create_app
from state.connection import connect
from state.stock_writer import StockWriter
from tests.harness.api import issue_key, key_headers

# 2026-11-22T01:23:45.123Z and a minute later
T0 = 1795310625.123
T1 = T0 + 60

HAMMER = SkuStock(
    sku="SKU-HAMMER",
    version=7,
    as_of=T1,
    locations=(
        LocationStock(location_id="store-1", on_hand=12, reserved=2, updated_at=T0),
        LocationStock(location_id="wh-9", on_hand=3, reserved=5, updated_at=T1),
    ),
)
NAILS = SkuStock(
    sku="SKU-NAILS",
    version=1,
    as_of=T0,
    locations=(LocationStock(location_id="store-1", on_hand=500, reserved=0, updated_at=T0),),
)

HAMMER_JSON = {
    "sku": "SKU-HAMMER",
    "total_on_hand": 15,
    "total_reserved": 7,
    "total_available": 8,
    "locations": [
        {
            "location_id": "store-1",
            "on_hand": 12,
            "reserved": 2,
            "available": 10,
            "updated_at": "2026-11-22T01:23:45.123Z",
        },
        {
            "location_id": "wh-9",
            "on_hand": 3,
            "reserved": 5,
            "available": -2,
            "updated_at": "2026-11-22T01:24:45.123Z",
        },
    ],
    "as_of": "2026-11-22T01:24:45.123Z",
}


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient]:
    writer_client = connect(redis_url)
    try:
        assert StockWriter(writer_client).write_batch([HAMMER, NAILS]) == 2
    finally:
        writer_client.close()
    app = create_app(Settings(redis_url=redis_url, flow_metrics_port=0))
    with TestClient(app, headers=key_headers(issue_key(redis_url, "storefront").key)) as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    assert message
    return message


def test_read_inventory_returns_the_contract_sku_object(client: TestClient) -> None:
    response = client.get("/v1/inventory/SKU-HAMMER")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == HAMMER_JSON


def test_read_inventory_at_location_returns_one_location(client: TestClient) -> None:
    response = client.get("/v1/inventory/SKU-HAMMER/locations/wh-9")

    assert response.status_code == 200
    assert response.json() == {
        "sku": "SKU-HAMMER",
        "location_id": "wh-9",
        "on_hand": 3,
        "reserved": 5,
        "available": -2,
        "updated_at": "2026-11-22T01:24:45.123Z",
    }


def test_read_inventory_at_unknown_location_is_404(client: TestClient) -> None:
    response = client.get("/v1/inventory/SKU-HAMMER/locations/store-404")

    assert_error(response, 404, "not_found")


def test_read_inventory_batch_lists_found_in_order_and_missing(client: TestClient) -> None:
    response = client.get("/v1/inventory", params={"skus": "SKU-NAILS, SKU-GHOST,SKU-HAMMER,SKU-NAILS"})

    assert response.status_code == 200
    body = response.json()
    assert [item["sku"] for item in body["items"]] == ["SKU-NAILS", "SKU-HAMMER"]
    assert body["items"][1] == HAMMER_JSON
    assert body["missing"] == ["SKU-GHOST"]


def test_read_inventory_batch_of_500_distinct_skus_is_answered(client: TestClient) -> None:
    skus = ["SKU-HAMMER", *(f"SKU-{n}" for n in range(499))]

    response = client.get("/v1/inventory", params={"skus": ",".join(skus)})

    assert response.status_code == 200
    body = response.json()
    assert body["items"] == [HAMMER_JSON]
    assert body["missing"] == skus[1:]


def test_read_inventory_batch_of_501_skus_is_422(client: TestClient) -> None:
    skus = ",".join(f"SKU-{n}" for n in range(501))

    message = assert_error(client.get("/v1/inventory", params={"skus": skus}), 422, "invalid_parameter")

    assert "skus" in message
    assert "500" in message


@pytest.mark.parametrize("skus", ["", " ", "SKU-HAMMER,,SKU-NAILS", "SKU-HAMMER,"])
def test_read_inventory_batch_with_empty_skus_is_422(client: TestClient, skus: str) -> None:
    message = assert_error(client.get("/v1/inventory", params={"skus": skus}), 422, "invalid_parameter")

    assert message.startswith("skus")


def test_read_inventory_batch_without_skus_is_422(client: TestClient) -> None:
    message = assert_error(client.get("/v1/inventory"), 422, "invalid_parameter")

    assert message.startswith("skus")


def test_read_inventory_unknown_sku_is_404(client: TestClient) -> None:
    message = assert_error(client.get("/v1/inventory/SKU-GHOST"), 404, "not_found")

    assert "SKU-GHOST" in message


@pytest.mark.parametrize(
    "path",
    ["/v1/inventory/" + "S" * 257, "/v1/inventory/SKU-HAMMER/locations/" + "L" * 257],
)
def test_read_inventory_with_overlong_id_is_422_naming_it(client: TestClient, path: str) -> None:
    message = assert_error(client.get(path), 422, "invalid_parameter")

    assert message.startswith("sku" if path.count("/") == 3 else "location_id")


def test_unknown_route_is_404_with_error_body(client: TestClient) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")


def test_healthz_is_ok(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_when_redis_answers(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/v1/inventory/SKU-HAMMER")
    client.get("/v1/inventory/SKU-NAILS")
    client.get("/v1/inventory/SKU-GHOST")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    ok = 'omnistream_api_requests_total{method="GET",route="/v1/inventory/{sku}",status="200"} 2.0'
    missing = 'omnistream_api_requests_total{method="GET",route="/v1/inventory/{sku}",status="404"} 1.0'
    assert ok in lines
    assert missing in lines
    assert 'omnistream_api_request_duration_seconds_count{route="/v1/inventory/{sku}"} 3.0' in lines
    assert not any("SKU-HAMMER" in line for line in lines)  # raw paths never become labels


def test_openapi_documents_the_inventory_shapes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()

    single = spec["paths"]["/v1/inventory/{sku}"]["get"]["responses"]
    assert single["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SkuStock")
    assert single["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert client.get("/docs").status_code == 200
