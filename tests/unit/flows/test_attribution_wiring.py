"""The attribution flow's wiring, run in process: injected source and sink, no broker, no Redis."""

from __future__ import annotations

import time
from typing import Any

import orjson
from bytewax.testing import TestingSink, TestingSource, run_main

from events.topics import Topic
from flows.attribution import build_flow
from flows.kafka_source import KafkaRecord
from flows.metrics import SKIPPED
from flows.sinks import FlowRecord, TopicRecord
from omnistream.settings import Settings
from state import keys
from state.doc_writer import FencedDoc
from tests.unit.loyalty.events import DAY, T0, Record, link, page_view, purchase, sale

SETTINGS = Settings(attribution_shards=3)


def run(events: list[Record], batch_size: int = 4) -> list[FlowRecord]:
    offsets: dict[Topic, int] = {}
    records = []
    for topic, _, value in events:
        offsets[topic] = offsets.get(topic, -1) + 1
        records.append(KafkaRecord(SETTINGS.topic(topic), 0, offsets[topic], value))
    out: list[FlowRecord] = []
    run_main(build_flow(SETTINGS, source=TestingSource(records, batch_size=batch_size), sink=TestingSink(out)))
    return out


def credits(out: list[FlowRecord]) -> dict[str, dict[str, Any]]:
    assert all(i.topic is Topic.ATTRIBUTION for i in out if type(i) is TopicRecord)
    return {orjson.loads(i.body)["order_id"]: orjson.loads(i.body) for i in out if type(i) is TopicRecord}


def days(out: list[FlowRecord]) -> dict[str, dict[str, Any]]:
    newest: dict[str, tuple[int, dict[str, Any]]] = {}
    for i in out:
        if type(i) is FencedDoc:
            doc = orjson.loads(i.doc)
            assert i.key == keys.attribution_day(doc["day"])
            if doc["day"] not in newest or newest[doc["day"]][0] < i.version:
                newest[doc["day"]] = (i.version, doc)
    return {day: doc for day, (_, doc) in newest.items()}


def test_a_campaign_click_online_credits_a_later_store_sale_of_the_linked_member() -> None:
    utm = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "xmas"}
    events = [
        page_view("v1", "U1", "s1", T0, **utm),
        page_view("v2", "U1", "s1", T0 + 10),  # same session, no tags: not a touchpoint
        page_view("v3", "U1", "s2", T0 + DAY, referrer="https://blog.example.org/post"),
        link("U1", "C1", T0 + DAY + 5),
        sale("T1", "C1", T0 + 2 * DAY, [("A", 1, 30.0)]),  # in store, two days later
        page_view("v4", "U2", "s3", T0, utm_source="google", utm_medium="cpc", utm_campaign="brand"),
        purchase("O2", "U2", T0 + 60, [("A", 2, 10.0)]),  # U2 is not a member: its own journey converts
        sale("T9", "C9", T0 + 2 * DAY + 1, [("A", 1, 5.0)]),  # a member with no linked account: not credited
        link("U8", "C8", T0 + 2 * DAY),
        sale("T8", "C8", T0 + 2 * DAY + 2, [("A", 1, 5.0)]),  # linked, but no touchpoint: direct
        sale("T8", "C8", T0 + 2 * DAY + 2, [("A", 1, 5.0)]),  # a duplicate: credited once
    ]
    out = run(events)
    got = credits(out)
    assert set(got) == {"T1", "O2", "T8"}
    assert [t["campaign"] for t in got["T1"]["path"]] == ["xmas", "(referral)"]
    assert got["T1"]["journey"] == "c:C1" and got["T1"]["channel"] == "pos"
    assert got["T1"]["credits"]["campaign"]["first_touch"] == {"xmas": 1.0}
    assert got["T1"]["credits"]["source"]["last_non_direct"] == {"blog.example.org": 1.0}
    assert got["O2"]["credits"]["medium"]["linear"] == {"cpc": 0.5, "(direct)": 0.5}
    assert got["O2"]["credits"]["medium"]["last_non_direct"] == {"cpc": 1.0}
    assert got["T8"]["credits"]["campaign"]["linear"] == {"(direct)": 1.0}
    # The purchase event itself opened session sess-O2: a new session without tags is a direct touchpoint.
    assert [t["source"] for t in got["O2"]["path"]] == ["google", "(direct)"]

    per_day = days(out)
    first, third = per_day["2024-11-24"], per_day["2024-11-26"]
    assert (first["conversions"], first["revenue"]) == (1, 20.0)
    assert (third["conversions"], third["revenue"]) == (2, 35.0)
    assert third["credits"]["campaign"]["position_based"]["xmas"] == [0.5, 15.0]
    assert third["paths"]["campaign"] == {"xmas>(referral)": [1.0, 0.0, 30.0], "(direct)": [1.0, 0.0, 5.0]}


def test_touchpoints_that_never_convert_leave_as_abandoned_paths_for_the_markov_model() -> None:
    events = [
        page_view("v1", "U5", "s1", T0, utm_source="tiktok", utm_medium="social", utm_campaign="teens"),
        page_view("v2", None, "anon-1", T0 + 5, utm_source="google", utm_medium="cpc", utm_campaign="brand"),
        sale("T-CLOCK", "C7", T0 + 40 * DAY, [("A", 1, 1.0)]),  # a month and more later
    ]
    per_day = days(run(events))
    assert per_day["2024-11-24"]["paths"]["campaign"] == {"teens": [0.0, 1.0, 0.0], "brand": [0.0, 1.0, 0.0]}


def test_clicks_dated_ahead_of_the_wall_clock_are_skipped_and_end_no_journey() -> None:
    # The flow reads the clickstream raw (`AttributionBatch.add_raw`), past the decoder's bound on event time:
    # it applies the bound itself. A click a year ahead, taken, would move the flow's clock past every journey's
    # lookback, and the member's store sale below would find its campaign journey abandoned.
    year_ahead = time.time() + 365 * 86_400.0
    events = [
        page_view("v1", "U1", "s1", T0, utm_source="newsletter", utm_medium="email", utm_campaign="xmas"),
        page_view("v-ahead", "U3", "s9", year_ahead),  # untagged: read only as far as who and when
        page_view("v-ahead-tagged", "U4", "s8", year_ahead, utm_source="google"),  # tagged: decoded in full
        link("U1", "C1", T0 + DAY),
        sale("T1", "C1", T0 + 2 * DAY, [("A", 1, 30.0)]),
    ]
    skipped = SKIPPED.labels("attribution", Topic.CLICKSTREAM.value)._value.get()

    got = credits(run(events))

    assert SKIPPED.labels("attribution", Topic.CLICKSTREAM.value)._value.get() == skipped + 2
    assert set(got) == {"T1"}
    assert got["T1"]["credits"]["campaign"]["first_touch"] == {"xmas": 1.0}
