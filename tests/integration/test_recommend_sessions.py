"""Recommendations driven by the whole session, and the `seen` choice, end to end.

Real broker, Redis and Bytewax runs of the inventory and recommend flows, answers from the API: the session's
earlier SKUs (not only the current one) change its answer; `seen=include` ranks what the shopper already
viewed by how likely they go back to it, `seen=exclude` (the default) never returns the SKU being viewed and
gives earlier views no re-visit credit; and a click reaches
the session's next answer within a second while the recommend flow tails the stream.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from events.topics import Topic
from flows.launcher import start_flow
from omnistream.settings import Settings
from serving.app import create_app
from state import keys
from state.connection import connect
from tests.harness.api import issue_key, key_headers
from tests.harness.flows import publish, run_to_end
from tests.integration.test_recommend import T0, browsing_history, recommend, run_flows, skus_of, stocked_catalog, view

pytestmark = pytest.mark.integration


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=key_headers(issue_key(settings.redis.url, "console").key)) as client:
        yield client


def stove_history() -> list[tuple[Topic, bytes, bytes]]:
    """Sessions that teach one more pairing: after E, shoppers look at F."""
    records = []
    for n in range(20):
        ts = T0 + 70 + n * 30
        records += [view(f"hist-e{n}", "SKU-E", ts), view(f"hist-e{n}", "SKU-F", ts + 5)]
    return records


def test_a_sessions_earlier_items_change_its_recommendations(settings: Settings, api: TestClient) -> None:
    now = T0 + 1_800
    # Both sessions are on SKU-B now; one came from SKU-A (whose shoppers go on to D), the other from SKU-E (F).
    publish(settings, [*stocked_catalog("STORE-1"), *browsing_history(), *stove_history(),
                       view("S-FROM-A", "SKU-A", now), view("S-FROM-A", "SKU-B", now + 10),
                       view("S-FROM-E", "SKU-E", now), view("S-FROM-E", "SKU-B", now + 10)])  # fmt: skip
    run_flows(settings)

    from_a = recommend(api, session_id="S-FROM-A", sku="SKU-B", location_id="STORE-1")
    from_e = recommend(api, session_id="S-FROM-E", sku="SKU-B", location_id="STORE-1")

    assert skus_of(from_a)[0] == skus_of(from_e)[0] == "SKU-C"  # the current SKU's neighbour leads both
    assert skus_of(from_a).index("SKU-D") < skus_of(from_a).index("SKU-F"), from_a
    assert skus_of(from_e).index("SKU-F") < skus_of(from_e).index("SKU-D"), from_e
    reasons_a = {item["sku"]: item["reason"] for item in from_a["items"]}
    reasons_e = {item["sku"]: item["reason"] for item in from_e["items"]}
    # Either the earlier SKU's neighbours or the shoppers whose sessions held it too (session kNN) explain it.
    assert {reasons_a["SKU-D"], reasons_e["SKU-F"]} <= {"co_visitation", "similar_shoppers"}
    # The SKU being viewed is in neither answer by default.
    assert "SKU-B" not in skus_of(from_a) and "SKU-B" not in skus_of(from_e)


def test_seen_include_ranks_viewed_items_by_revisit_likelihood_and_exclude_never_returns_the_current_one(
    settings: Settings, api: TestClient
) -> None:
    now = T0 + 1_800
    # S-1 viewed A three times, then E, then B (on B now); A was viewed often, E once and longer ago than B.
    visits = [view("S-1", sku, now + 10 * n) for n, sku in enumerate(["SKU-A", "SKU-A", "SKU-A", "SKU-E", "SKU-B"])]
    publish(settings, [*stocked_catalog("STORE-1"), *browsing_history(), *stove_history(), *visits])
    run_flows(settings)

    included = recommend(api, session_id="S-1", sku="SKU-B", location_id="STORE-1", seen="include", k=10)
    excluded = recommend(api, session_id="S-1", sku="SKU-B", location_id="STORE-1", seen="exclude", k=10)
    default = recommend(api, session_id="S-1", sku="SKU-B", location_id="STORE-1", k=10)

    ranked = skus_of(included)
    assert ranked[0] == "SKU-B", included  # the SKU being viewed: the likeliest next click of all
    assert included["items"][0]["reason"] == "viewed_again"
    assert ranked.index("SKU-A") < ranked.index("SKU-E"), included  # viewed thrice beats viewed once, though older
    assert "SKU-B" not in skus_of(excluded), excluded
    assert all(item["reason"] != "viewed_again" for item in excluded["items"]), excluded
    assert skus_of(default) == skus_of(excluded)
    assert "SKU-C" in skus_of(excluded)  # the answer is still made: B's neighbour


def test_seen_include_never_returns_a_viewed_item_that_is_not_sellable_there(
    settings: Settings, api: TestClient
) -> None:
    now = T0 + 1_800
    records = [*stocked_catalog("STORE-1"), *browsing_history()]
    records = [record for record in records if not (record[0] is Topic.INVENTORY and record[1] == b"SKU-A")]
    publish(settings, [*records, view("S-2", "SKU-A", now), view("S-2", "SKU-B", now + 10)])
    run_flows(settings)

    body = recommend(api, session_id="S-2", sku="SKU-B", location_id="STORE-1", seen="include")

    assert skus_of(body)[0] == "SKU-B"
    assert "SKU-A" not in skus_of(body), body  # viewed, but never stocked at STORE-1


def test_an_unknown_seen_value_is_a_422(api: TestClient) -> None:
    response = api.get("/v1/recommendations", params={"session_id": "S-1", "seen": "sometimes"})
    assert response.status_code == 422, response.text


def test_a_click_reaches_the_sessions_next_answer_within_a_second(settings: Settings, api: TestClient) -> None:
    publish(settings, [*stocked_catalog("STORE-1"), *browsing_history(), *stove_history()])
    run_to_end(settings, flow="inventory")
    run = start_flow("recommend", settings)  # tailing, as deployed
    try:
        client = connect(settings.redis.url)
        started = time.monotonic()
        publish(settings, [view("S-WARM", "SKU-A", time.time())])
        while not client.exists(keys.rec_profile("s:S-WARM")):  # the flow is up and caught up
            assert time.monotonic() - started < 120, "the recommend flow did not start"
            time.sleep(0.05)

        publish(settings, [view("S-LIVE", "SKU-A", time.time())])
        time.sleep(0.5)
        sent = time.monotonic()
        publish(settings, [view("S-LIVE", "SKU-E", time.time())])
        lag = None
        answer: dict[str, Any] = {}
        while time.monotonic() - sent < 5.0:
            answer = recommend(api, session_id="S-LIVE", location_id="STORE-1", seen="include", k=5)
            if skus_of(answer)[:1] == ["SKU-E"]:
                lag = time.monotonic() - sent
                break
            time.sleep(0.02)
    finally:
        run.stop()

    assert lag is not None, f"the click on SKU-E never reached the answer: {answer}"
    assert lag <= 1.0, f"{lag:.3f} s from the click to the answer"
    assert answer["items"][0]["reason"] == "viewed_again"
    assert "SKU-F" in skus_of(answer)  # E's neighbour came with it
