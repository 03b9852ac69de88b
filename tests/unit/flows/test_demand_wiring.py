"""The demand flow's wiring, run in process: injected source and sink, no broker, no Redis."""

from __future__ import annotations

import math
import random
from typing import Any

import orjson
from bytewax.testing import TestingSink, TestingSource, run_main

from events.dead_letter import DeadLetter
from events.reasons import Reason
from events.topics import Topic
from flows.demand import build_flow
from flows.kafka_source import KafkaRecord
from flows.sinks import FlowRecord
from omnistream.settings import Settings
from state import keys
from state.doc_writer import FencedDoc
from tests.unit.events.examples import click, envelope, till

# alpha 1: the level is the last 7 days' demand, so every figure below is arithmetic.
SETTINGS = Settings(
    demand_locations="STORE-1=Europe/London,GB-ENG,5,0.9", demand_shards=3, demand_alpha=1.0, demand_lateness_s=3600.0
)
CARD = {"method": "card", "card_token": "tok_1", "card_bin": "411111", "billing_country": "GB"}
MONDAY, TUESDAY = "2026-11-23", "2026-11-24"  # London is on UTC in November


def record(topic: Topic, offset: int, payload: dict[str, Any] | bytes) -> KafkaRecord:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return KafkaRecord(SETTINGS.topic(topic), 0, offset, raw)


def at(day: str, hour: int) -> str:
    return f"{day}T{hour:02d}:00:00.000Z"


def sale(event_id: str, txn_id: str, ts: str, sku: str, qty: int, store: str = "STORE-1", kind: str = "sale") -> Any:
    items = [{"sku": sku, "qty": qty, "unit_price": 2.0}]
    payment = {"method": "cash"}
    return {
        **till(kind, items=items, total=2.0 * qty, payment=payment),
        "event_id": event_id,
        "ts": ts,
        "txn_id": txn_id,
        "store_id": store,
    }


def weather(event_id: str, ts: str, day: str, location: str = "STORE-1", temperature: float = 20.0) -> Any:
    return {
        **envelope("weather", location_id=location, day=day, kind="forecast", temperature_c=temperature),
        "event_id": event_id,
        "ts": ts,
    }


def run(records: list[KafkaRecord], settings: Settings = SETTINGS) -> list[FlowRecord]:
    out: list[FlowRecord] = []
    run_main(build_flow(settings, source=TestingSource(records, batch_size=3), sink=TestingSink(out)))
    return out


def latest(out: list[FlowRecord]) -> dict[str, Any]:
    """The newest document per key, parsed: what Redis holds once the fence has kept the highest version."""
    newest: dict[str, FencedDoc] = {}
    for item in out:
        if type(item) is FencedDoc and (item.key not in newest or item.version > newest[item.key].version):
            newest[item.key] = item
    return {key: orjson.loads(doc.doc) for key, doc in newest.items()}


MONDAY_EVENTS = [
    record(Topic.POS, 0, sale("s1", "T1", at(MONDAY, 10), "SKU-A", 3)),
    record(Topic.POS, 1, sale("r1", "T9", at(MONDAY, 11), "SKU-A", 1, kind="return")),
    record(Topic.POS, 2, sale("s2", "T2", at(MONDAY, 12), "SKU-A", 5)),
    record(
        Topic.POS,
        3,
        {**till("void", original_txn_id="T2"), "event_id": "v1", "ts": at(MONDAY, 12), "store_id": "STORE-1"},
    ),
    record(Topic.POS, 4, sale("s1", "T1", at(MONDAY, 10), "SKU-A", 3)),  # a redelivery of s1
    record(
        Topic.CLICKSTREAM,
        0,
        {
            **click(
                "purchase",
                order_id="O1",
                items=[{"sku": "SKU-B", "qty": 4, "unit_price": 1.0}],
                total=4.0,
                currency="GBP",
                fulfilment_location_id="STORE-1",
                payment=CARD,
            ),
            "event_id": "p1",
            "ts": at(MONDAY, 13),
        },
    ),
    record(
        Topic.INVENTORY,
        0,
        {
            **envelope("order_cancel", sku="SKU-B", location_id="STORE-1", order_id="O1"),
            "event_id": "c1",
            "ts": at(MONDAY, 14),
        },
    ),
    record(
        Topic.CLICKSTREAM,
        1,
        {
            **click(
                "purchase",
                order_id="O2",
                items=[{"sku": "SKU-C", "qty": 7, "unit_price": 1.0}, {"sku": "SKU-C", "qty": 7, "unit_price": 1.0}],
                total=14.0,
                currency="GBP",
                fulfilment_location_id="STORE-1",
                payment=CARD,
            ),
            "event_id": "p2",
            "ts": at(MONDAY, 15),
        },
    ),
]
CLOSES_MONDAY = record(Topic.POS, 9, sale("s9", "T8", at(TUESDAY, 2), "SKU-Z", 1))  # past midnight + 1 h


def test_net_demand_of_a_closed_day_becomes_forecasts_and_rising_items_and_bad_input_dead_letters() -> None:
    out = run(
        [
            *MONDAY_EVENTS,
            record(Topic.POS, 5, sale("s5", "T5", at(MONDAY, 16), "SKU-A", 2, store="STORE-9")),  # unknown store
            record(Topic.WEATHER, 0, weather("w1", at(MONDAY, 6), "2026-12-30")),  # 37 days ahead: past the horizon
            record(Topic.WEATHER, 1, weather("w2", at(MONDAY, 6), TUESDAY, location="STORE-9")),
            record(Topic.WEATHER, 2, b'{"type": "weather", "location_id": '),  # garbage
            record(Topic.POS, 6, b"not json"),  # the inventory flow's to dead-letter, not this one's
            CLOSES_MONDAY,
        ]
    )

    letters = sorted((item.source_topic, item.offset, item.reason) for item in out if type(item) is DeadLetter)
    assert letters == [
        (SETTINGS.topic(Topic.POS), 5, Reason.REFUSED),
        (SETTINGS.topic(Topic.WEATHER), 0, Reason.REFUSED),
        (SETTINGS.topic(Topic.WEATHER), 1, Reason.REFUSED),
        (SETTINGS.topic(Topic.WEATHER), 2, Reason.NOT_JSON),
    ]
    docs = latest(out)
    # SKU-A: 3 sold, 1 returned, 5 sold and voided, s1 redelivered: 2 net. SKU-B: ordered and cancelled: nothing.
    # SKU-C: two lines of 7 in one basket: 14. Only Monday is known, so each weekday carries a seventh.
    assert set(docs) == {keys.forecast("SKU-A", "STORE-1"), keys.forecast("SKU-C", "STORE-1"), keys.rising("STORE-1")}
    sku_a = docs[keys.forecast("SKU-A", "STORE-1")]
    assert sku_a["as_of"] == MONDAY and sku_a["last_28_days"] == 2.0 and sku_a["interval"] == 0.8
    assert [d["date"] for d in sku_a["days"][:2]] == [TUESDAY, "2026-11-25"] and len(sku_a["days"]) == 28
    assert [d["forecast"] for d in sku_a["days"][:7]] == [round(2 / 7, 3)] * 7
    assert all(d["lower"] <= d["upper"] for d in sku_a["days"])
    assert [d["forecast"] for d in docs[keys.forecast("SKU-C", "STORE-1")]["days"][:1]] == [2.0]
    rising = docs[keys.rising("STORE-1")]
    assert rising["as_of"] == MONDAY
    assert [(i["sku"], i["forecast_7_days"], i["last_28_days"], i["increase"]) for i in rising["items"]] == [
        ("SKU-C", 14.0, 14.0, 10.5),
        ("SKU-A", 2.0, 2.0, 1.5),
    ]


def test_a_day_stays_open_until_the_watermark_passes_its_midnight_plus_the_lateness() -> None:
    one_hour_early = record(Topic.POS, 9, sale("s9", "T8", at(TUESDAY, 0), "SKU-Z", 1))
    assert not any(type(item) is FencedDoc for item in run([*MONDAY_EVENTS, one_hour_early]))


def test_events_dated_after_the_origin_leave_its_forecasts_unchanged_whatever_their_arrival_order() -> None:
    without = latest(run([*MONDAY_EVENTS, CLOSES_MONDAY]))
    # Tuesday's demand for the same SKUs, some arriving before Monday's last events (out of order, within
    # the lateness): it lands on Tuesday, which is not closed, so Monday's forecasts must not move.
    future = [
        record(Topic.POS, 20, sale("f1", "F1", at(TUESDAY, 0), "SKU-A", 50)),
        record(
            Topic.CLICKSTREAM,
            20,
            {
                **click(
                    "purchase",
                    order_id="F2",
                    items=[{"sku": "SKU-C", "qty": 30, "unit_price": 1.0}],
                    total=30.0,
                    currency="GBP",
                    fulfilment_location_id="STORE-1",
                    payment=CARD,
                ),
                "event_id": "f2",
                "ts": f"{TUESDAY}T00:30:00.000Z",
            },
        ),
    ]
    shuffled = [*MONDAY_EVENTS[:3], future[0], *MONDAY_EVENTS[3:6], future[1], *MONDAY_EVENTS[6:], CLOSES_MONDAY]
    with_future = latest(run(shuffled))
    assert with_future == without
    assert with_future[keys.forecast("SKU-A", "STORE-1")]["as_of"] == MONDAY


def test_stock_movements_read_ahead_of_the_tills_do_not_close_a_day_early() -> None:
    """Only demand moves the watermark: a receipt, count or hold dated hours later closes nothing.

    The inventory topic is read for the reorders step's stock; read ahead of the tills (its own partitions,
    another producer's clock), its events closed Monday before Monday's last till events were in, which
    then counted only as late corrections that Monday's forecasts never saw.
    """
    monday = latest(run([*MONDAY_EVENTS, CLOSES_MONDAY]))
    ahead = [
        record(Topic.INVENTORY, 30, {**envelope("receipt", sku="SKU-A", location_id="STORE-1", qty=20),
                                     "event_id": "k1", "ts": at(TUESDAY, 3)}),
        record(Topic.INVENTORY, 31, {**envelope("count", sku="SKU-A", location_id="STORE-1", on_hand=20),
                                     "event_id": "k2", "ts": at(TUESDAY, 4)}),
    ]  # fmt: skip
    out = run([*MONDAY_EVENTS[:2], *ahead, *MONDAY_EVENTS[2:], CLOSES_MONDAY])
    forecasts = {key: doc for key, doc in latest(out).items() if not key.startswith(keys.reorder("", "")[:20])}
    assert forecasts == monday
    assert forecasts[keys.forecast("SKU-A", "STORE-1")]["last_28_days"] == 2.0  # the void of T2 counted on Monday
    assert not any(type(item) is FencedDoc for item in run([*MONDAY_EVENTS, *ahead]))  # no till past midnight yet


def test_weather_moves_the_forecast_of_a_weather_sensitive_item_and_nothing_without_it() -> None:
    """A simulated ice-cream SKU sells 10 + 2 per degree above 15 °C; a steady SKU sells 10 whatever the weather."""
    settings = SETTINGS.model_copy(update={"demand_alpha": 0.2})
    records: list[KafkaRecord] = []
    offset = 0
    draw = random.Random(5)
    temperatures = [round(draw.uniform(5.0, 25.0), 1) for _ in range(70)]
    start = 20_415  # 2025-11-24, a Monday (day number)
    from operators.demand.locations import day_of

    for day, temperature in enumerate(temperatures):
        date = day_of(start + day).isoformat()
        records.append(
            record(
                Topic.WEATHER,
                offset,
                {**weather(f"w{day}", f"{date}T05:00:00.000Z", date, temperature=temperature), "kind": "observation"},
            )
        )
        ice = max(0, round(10 + 2 * (temperature - 15)))
        if ice:
            records.append(record(Topic.POS, offset, sale(f"i{day}", f"TI{day}", f"{date}T12:00:00.000Z", "ICE", ice)))
        records.append(record(Topic.POS, offset + 1, sale(f"b{day}", f"TB{day}", f"{date}T12:00:00.000Z", "BREAD", 10)))
        offset += 2
    last = day_of(start + len(temperatures)).isoformat()
    hot, cold = day_of(start + len(temperatures) + 1).isoformat(), day_of(start + len(temperatures) + 2).isoformat()
    records.append(record(Topic.WEATHER, offset, weather("wf1", f"{last}T00:30:00.000Z", hot, temperature=28.0)))
    records.append(record(Topic.WEATHER, offset + 1, weather("wf2", f"{last}T00:30:00.000Z", cold, temperature=4.0)))
    records.append(record(Topic.POS, offset + 2, sale("close", "TC", f"{last}T02:00:00.000Z", "BREAD", 10)))
    docs = latest(run(records, settings))

    def by_date(sku: str) -> dict[str, float]:
        return {d["date"]: d["forecast"] for d in docs[keys.forecast(sku, "STORE-1")]["days"]}

    ice, bread = by_date("ICE"), by_date("BREAD")
    # The same weekdays a week later have no weather: the weekday profile alone.
    hot_plain, cold_plain = (day_of(start + len(temperatures) + k).isoformat() for k in (8, 9))
    assert ice[hot] > 1.5 * ice[hot_plain] and ice[cold] < ice[cold_plain] / 1.5
    assert abs(bread[hot] / bread[hot_plain] - 1) < 0.1 and abs(bread[cold] / bread[cold_plain] - 1) < 0.1


def inventory(event_id: str, ts: str, kind: str, sku: str, **fields: Any) -> Any:
    return {**envelope(kind, sku=sku, location_id="STORE-1", **fields), "event_id": event_id, "ts": ts}


def purchase(event_id: str, order_id: str, ts: str, lines: list[tuple[str, int]]) -> Any:
    items = [{"sku": sku, "qty": qty, "unit_price": 1.0} for sku, qty in lines]
    return {
        **click(
            "purchase",
            order_id=order_id,
            items=items,
            total=float(sum(q for _, q in lines)),
            currency="GBP",
            fulfilment_location_id="STORE-1",
            payment=CARD,
        ),
        "event_id": event_id,
        "ts": ts,
    }


def test_a_whole_order_cancel_nets_every_line_of_its_order_before_or_after_the_purchase() -> None:
    order = record(Topic.CLICKSTREAM, 30, purchase("p9", "O9", at(MONDAY, 9), [("SKU-D", 3), ("SKU-E", 2)]))
    kept = record(Topic.CLICKSTREAM, 31, purchase("p8", "O8", at(MONDAY, 9), [("SKU-D", 1)]))
    cancel = record(
        Topic.INVENTORY, 30, {**envelope("order_cancel", order_id="O9"), "event_id": "c9", "ts": at(MONDAY, 10)}
    )
    for events in ([order, kept, cancel], [cancel, kept, order]):
        docs = latest(run([*events, CLOSES_MONDAY]))
        assert set(docs) == {keys.forecast("SKU-D", "STORE-1"), keys.rising("STORE-1")}
        assert docs[keys.forecast("SKU-D", "STORE-1")]["last_28_days"] == 1.0  # O8's unit only


def test_reorder_suggestions_follow_forecasts_and_live_stock_with_days_of_cover() -> None:
    """STORE-1 (lead time 5 days, service 0.9) sells 6 SKU-A a day; 40 received, then sold down: a reorder."""
    records = [record(Topic.INVENTORY, 0, inventory("r1", at("2026-11-09", 7), "receipt", "SKU-A", qty=200))]
    offset = 1
    for day in range(9, 23):  # two weeks of 6 a day, from Monday 9 November
        date = f"2026-11-{day:02d}"
        records.append(record(Topic.POS, offset, sale(f"s{day}", f"T{day}", at(date, 12), "SKU-A", 6)))
        offset += 1
    records.append(record(Topic.POS, offset, sale("s23", "T23", at(MONDAY, 12), "SKU-A", 6)))
    records.append(CLOSES_MONDAY)  # Monday closes: a forecast of 6 a day; 200 - 90 = 110 available, no reorder
    out = run(records)
    assert not [item for item in out if getattr(item, "kind", None) == "reorder"]

    # Sold down to 20 on Tuesday: at or below the reorder point (5 days of 6 plus safety stock).
    sold = record(Topic.POS, 50, sale("s24", "T24", at(TUESDAY, 9), "SKU-A", 90))
    out = run([*records, sold])
    opened = [item for item in out if getattr(item, "kind", None) == "reorder"]
    assert [(r.status, r.location_id, r.available) for r in opened] == [("open", "STORE-1", 20)]
    suggestion = opened[0]
    assert suggestion.suggestion_id == "reorder:SKU-A:STORE-1" and suggestion.lead_time_days == 5
    assert suggestion.service_level == 0.9 and suggestion.forecast_as_of == MONDAY
    assert suggestion.lead_time_demand == 30.0 and suggestion.cover_days == round(20 / 6, 2)
    assert suggestion.qty == math.ceil(suggestion.order_up_to - 20) and suggestion.qty >= 72 - 20
    docs = latest(out)
    assert docs[keys.reorder("SKU-A", "STORE-1")]["qty"] == suggestion.qty

    # The goods arrive: withdrawn, and its document emptied.
    arrived = record(Topic.INVENTORY, 51, inventory("r2", at(TUESDAY, 11), "receipt", "SKU-A", qty=100))
    out = run([*records, sold, arrived])
    assert [r.status for r in out if getattr(r, "kind", None) == "reorder"] == ["open", "withdrawn"]
    assert latest(out)[keys.reorder("SKU-A", "STORE-1")] is None


def test_no_reorder_where_stock_was_never_seen_set_and_a_voided_sale_gives_its_units_back() -> None:
    history = [
        record(Topic.POS, day, sale(f"s{day}", f"T{day}", at(f"2026-11-{day:02d}", 12), "SKU-A", 6))
        for day in range(9, 24)
    ]
    out = run([*history, CLOSES_MONDAY])  # demand, but no receipt or count: stock unknown
    assert not [item for item in out if getattr(item, "kind", None) == "reorder"]

    counted = record(Topic.INVENTORY, 0, inventory("k1", at(TUESDAY, 8), "count", "SKU-A", on_hand=80))
    big = record(Topic.POS, 60, sale("s60", "T60", at(TUESDAY, 9), "SKU-A", 70))
    void = record(
        Topic.POS,
        61,
        {**till("void", original_txn_id="T60"), "event_id": "v60", "ts": at(TUESDAY, 10), "store_id": "STORE-1"},
    )
    out = run([*history, CLOSES_MONDAY, counted, big])
    assert [(r.status, r.available) for r in out if getattr(r, "kind", None) == "reorder"] == [("open", 10)]
    out = run([*history, CLOSES_MONDAY, counted, big, void])
    assert latest(out).get(keys.reorder("SKU-A", "STORE-1")) is None  # 80 available again: none open
