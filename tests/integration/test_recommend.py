"""The recommendation flow and API end to end: real broker, real Redis, real Bytewax runs of both flows.

Each test publishes events, runs the inventory flow (it keeps the sellable
sets) and the recommend flow to the end of their input, then asks the API.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from events.timestamps import rfc3339_ms
from events.topics import Topic
from omnistream.settings import Settings
from serving.app import create_app
from state import keys
from state.connection import connect
from state.doc_writer import read_doc
from tests.harness.api import issue_key, key_headers
from tests.harness.flows import publish, run_to_end

pytestmark = pytest.mark.integration

T0 = time.time() - 3_600.0  # an hour ago: everything below happened in the last hour, in order
_ids = itertools.count()


def _envelope(kind: str, ts: float, event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or f"e{next(_ids)}", "type": kind, "ts": rfc3339_ms(ts), "schema_version": 1}


def product(sku: str, category: str, ts: float = T0, active: bool = True) -> tuple[Topic, bytes, bytes]:
    event = {**_envelope("product_upsert", ts), "sku": sku, "name": sku.title(), "category": category,
             "price": 10.0, "active": active}  # fmt: skip
    return Topic.CATALOG, sku.encode(), orjson.dumps(event)


def price_change(sku: str, price: float, ts: float) -> tuple[Topic, bytes, bytes]:
    event = {**_envelope("price_change", ts), "sku": sku, "price": price, "currency": "EUR"}
    return Topic.CATALOG, sku.encode(), orjson.dumps(event)


def receipt(sku: str, location_id: str, qty: int, ts: float = T0) -> tuple[Topic, bytes, bytes]:
    event = {**_envelope("receipt", ts), "sku": sku, "location_id": location_id, "qty": qty}
    return Topic.INVENTORY, sku.encode(), orjson.dumps(event)


def view(session_id: str, sku: str, ts: float, *, user_id: str | None = None, event_id: str | None = None,
         rec_request_id: str | None = None) -> tuple[Topic, bytes, bytes]:  # fmt: skip
    event = {**_envelope("product_view", ts, event_id), "session_id": session_id, "user_id": user_id,
             "channel": "web", "sku": sku, "rec_request_id": rec_request_id}  # fmt: skip
    return Topic.CLICKSTREAM, (user_id or session_id).encode(), orjson.dumps(event)


def till_sale(store_id: str, sku: str, ts: float, *, customer_id: str | None = None) -> tuple[Topic, bytes, bytes]:
    event = {**_envelope("sale", ts), "store_id": store_id, "register_id": "R1", "cashier_id": "C1",
             "txn_id": f"T{next(_ids)}", "currency": "EUR", "customer_id": customer_id,
             "items": [{"sku": sku, "qty": 1, "unit_price": 10.0}], "total": 10.0,
             "payment": {"method": "cash"}}  # fmt: skip
    return Topic.POS, store_id.encode(), orjson.dumps(event)


def run_flows(settings: Settings) -> None:
    run_to_end(settings, flow="inventory")
    run_to_end(settings, flow="recommend")


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, headers=key_headers(issue_key(settings.redis.url, "console").key)) as client:
        yield client


def recommend(api: TestClient, **params: Any) -> dict[str, Any]:
    response = api.get("/v1/recommendations", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def skus_of(body: dict[str, Any]) -> list[str]:
    return [item["sku"] for item in body["items"]]


CATALOG = {"SKU-A": "tents", "SKU-B": "boots", "SKU-C": "boots", "SKU-D": "tents", "SKU-E": "stoves",
           "SKU-F": "stoves"}  # fmt: skip


def stocked_catalog(*locations: str, qty: int = 50) -> list[tuple[Topic, bytes, bytes]]:
    records = [product(sku, category) for sku, category in CATALOG.items()]
    records += [receipt(sku, location, qty) for sku in CATALOG for location in locations]
    return records


def browsing_history() -> list[tuple[Topic, bytes, bytes]]:
    """Sessions that teach: after B shoppers look at C; after A, at D."""
    records = []
    for n in range(20):
        ts = T0 + 60 + n * 30
        records += [view(f"hist-b{n}", "SKU-B", ts), view(f"hist-b{n}", "SKU-C", ts + 5)]
        records += [view(f"hist-a{n}", "SKU-A", ts), view(f"hist-a{n}", "SKU-D", ts + 5)]
    return records


def test_session_that_views_a_then_b_gets_b_like_items_next(settings: Settings, api: TestClient) -> None:
    now = T0 + 1_800
    publish(settings, [*stocked_catalog("STORE-1"), *browsing_history(),
                       view("S-NEW", "SKU-A", now), view("S-NEW", "SKU-B", now + 10)])  # fmt: skip
    run_flows(settings)

    body = recommend(api, session_id="S-NEW", location_id="STORE-1")

    assert skus_of(body)[0] == "SKU-C", body  # B's neighbour first: B is the newest
    assert body["items"][0]["reason"] in {"co_visitation", "similar_shoppers"}  # B's neighbours, or B's shoppers'
    assert skus_of(body).index("SKU-C") < skus_of(body).index("SKU-D")  # A's neighbour counts, less


def test_item_sold_out_at_a_store_by_a_till_sale_is_never_recommended_there(
    settings: Settings, api: TestClient
) -> None:
    records = [*stocked_catalog("WH-1"), *browsing_history()]
    records += [receipt(sku, "STORE-1", 1 if sku == "SKU-C" else 5) for sku in CATALOG]
    records.append(till_sale("STORE-1", "SKU-C", T0 + 1_700))  # the last SKU-C at STORE-1 goes
    publish(settings, [*records, view("S-1", "SKU-B", T0 + 1_800)])
    run_flows(settings)

    at_store = recommend(api, session_id="S-1", sku="SKU-B", location_id="STORE-1", k=100)
    anywhere = recommend(api, session_id="S-1", sku="SKU-B", k=100)
    at_warehouse = recommend(api, session_id="S-1", sku="SKU-B", location_id="WH-1", k=100)

    assert "SKU-C" not in skus_of(at_store)
    assert at_store["items"], "other items are still sellable at the store"
    assert skus_of(anywhere)[0] == "SKU-C"  # still stocked at the warehouse
    assert skus_of(at_warehouse)[0] == "SKU-C"
    assert "SKU-C" not in skus_of(recommend(api, user_id="U-NEW", location_id="STORE-1", k=100))


def test_an_answer_reused_for_shoppers_without_history_drops_an_item_as_soon_as_it_sells_out(
    settings: Settings, api: TestClient
) -> None:
    publish(settings, [*stocked_catalog("STORE-1", qty=1), *browsing_history()])
    run_flows(settings)
    page = {"user_id": "U-FIRST-VISIT", "sku": "SKU-B", "location_id": "STORE-1"}
    assert skus_of(recommend(api, **page))[0] == "SKU-C"
    assert skus_of(recommend(api, **page))[0] == "SKU-C"  # the same inputs: the same answer, reused

    publish(settings, [till_sale("STORE-1", "SKU-C", T0 + 1_700)])  # the only SKU-C at STORE-1 goes
    run_to_end(settings, flow="inventory")

    assert "SKU-C" not in skus_of(recommend(api, **page, k=100))
    assert "SKU-C" not in skus_of(recommend(api, **page))


def test_new_user_gets_what_is_trending_at_their_location(settings: Settings, api: TestClient) -> None:
    records = stocked_catalog("STORE-2", "STORE-3")
    records += [till_sale("STORE-2", "SKU-E", T0 + 100 + n, customer_id=f"L{n}") for n in range(6)]
    records += [till_sale("STORE-2", "SKU-F", T0 + 200 + n, customer_id=f"M{n}") for n in range(2)]
    records += [till_sale("STORE-3", "SKU-A", T0 + 300 + n, customer_id=f"N{n}") for n in range(9)]
    publish(settings, records)
    run_flows(settings)

    body = recommend(api, user_id="U-BRAND-NEW", location_id="STORE-2", k=3)

    assert skus_of(body)[0] == "SKU-E", body  # the store's best seller, though SKU-A sells more elsewhere
    assert body["items"][0]["reason"] == "trending_location"
    assert "SKU-F" in skus_of(body)


def test_withdrawn_item_disappears_from_recommendations(settings: Settings, api: TestClient) -> None:
    publish(settings, [*stocked_catalog("STORE-1"), *browsing_history()])
    run_flows(settings)
    assert skus_of(recommend(api, session_id="S-2", sku="SKU-B", location_id="STORE-1"))[0] == "SKU-C"

    publish(settings, [product("SKU-C", "boots", ts=T0 + 2_000, active=False)])
    run_to_end(settings, flow="recommend")

    assert "SKU-C" not in skus_of(recommend(api, session_id="S-2", sku="SKU-B", location_id="STORE-1", k=100))
    assert "SKU-C" not in skus_of(recommend(api, session_id="S-3", location_id="STORE-1", k=100))


def test_a_price_change_reaches_the_item_document_and_a_late_older_upsert_does_not_roll_it_back(
    settings: Settings,
) -> None:
    publish(settings, [product("SKU-A", "tents")])
    run_to_end(settings, flow="recommend")
    publish(settings, [price_change("SKU-A", 7.5, T0 + 100), product("SKU-A", "tents", ts=T0 + 50)])
    run_to_end(settings, flow="recommend")  # resumed from its recovery state

    doc = read_doc(connect(settings.redis.url), keys.rec_item("SKU-A"))
    assert doc is not None
    assert orjson.loads(doc) == {"sku": "SKU-A", "active": True, "category": "tents", "price": 7.5}


def _neighbours(settings: Settings, sku: str) -> dict[str, float]:
    doc = read_doc(connect(settings.redis.url), keys.rec_neighbours(sku))
    assert doc is not None, f"no neighbours written for {sku}"
    return {other: score for other, score, _ in orjson.loads(doc)}


def test_redelivered_events_do_not_inflate_co_visitation(settings: Settings) -> None:
    ts = T0 + 500
    once = [view("S-ONCE", "SKU-E", ts, event_id="once-1"), view("S-ONCE", "SKU-F", ts + 5, event_id="once-2")]
    twice = [view("S-TWICE", "SKU-A", ts, event_id="twice-1"), view("S-TWICE", "SKU-D", ts + 5, event_id="twice-2")]
    publish(settings, [*stocked_catalog("STORE-1"), *once, *twice, *twice, twice[1]])
    run_flows(settings)

    # Scores are decayed to each shard's clock (minutes apart at most, half-life of days): equal to 1e-3.
    single = _neighbours(settings, "SKU-E")["SKU-F"]
    assert single > 0
    assert _neighbours(settings, "SKU-A") == pytest.approx({"SKU-D": single}, rel=1e-3)
    assert _neighbours(settings, "SKU-D") == pytest.approx({"SKU-A": _neighbours(settings, "SKU-F")["SKU-E"]}, rel=1e-3)


def test_ab_assignment_is_stable_and_experiment_counters_match_the_clicks(settings: Settings, api: TestClient) -> None:
    publish(settings, [*stocked_catalog("STORE-1"), *browsing_history()])
    run_flows(settings)

    answers: dict[str, dict[str, Any]] = {}
    for n in range(12):
        user = f"U-{n}"
        first, second = (recommend(api, user_id=user, sku="SKU-B", location_id="STORE-1", k=3) for _ in range(2))
        assert first["variant"] == second["variant"]  # stable per user
        assert first["request_id"] != second["request_id"]
        answers[user] = first
    assert api.app.state.recommender.publisher.flush(10.0) == 0  # type: ignore[attr-defined]
    variants = {body["variant"] for body in answers.values()}
    assert len(variants) == 2, "12 users should reach both arms of a 50/50 split"

    clicks: dict[str, int] = dict.fromkeys(variants, 0)
    click_events = []
    for n, (user, body) in enumerate(answers.items()):
        if n % 3 == 2 or not body["items"]:
            continue  # these shoppers ignore their recommendations
        clicked = body["items"][0]["sku"]
        click_events.append(view(f"s-{user}", clicked, time.time() + 5, user_id=user,
                                 rec_request_id=body["request_id"]))  # fmt: skip
        clicks[body["variant"]] += 1
    publish(settings, [*click_events, *click_events[:2]])  # two redelivered clicks count once
    run_to_end(settings, flow="recommend")

    experiments = api.get("/v1/experiments").json()
    metrics = {arm["variant"]: arm["metrics"] for arm in experiments["variants"]}
    assert {v: metrics[v]["clicks"] for v in variants} == clicks
    assert sum(metrics[v]["requests"] for v in variants) == 24
    assert sum(metrics[v]["impressions"] for v in variants) == sum(len(body["items"]) for body in answers.values()) * 2
    for variant in variants:
        assert metrics[variant]["ctr"] == pytest.approx(clicks[variant] / metrics[variant]["impressions"])


def test_bad_parameters_are_422_with_the_contract_body(api: TestClient) -> None:
    for params in ({"k": "0"}, {"k": "101"}, {"k": "ten"}, {"channel": "fax"}, {"sku": "x" * 300}):
        response = api.get("/v1/recommendations", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["code"] == "invalid_parameter"


def test_cold_start_without_any_state_is_an_empty_answer(api: TestClient) -> None:
    body = recommend(api, user_id="U-1", location_id="NOWHERE")
    assert body["items"] == [] and body["variant"] and body["request_id"]
