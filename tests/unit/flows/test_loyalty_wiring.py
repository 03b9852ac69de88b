"""The loyalty flow's wiring, run in process: injected source and sink, no broker, no Redis."""

from __future__ import annotations

import time
from typing import Any

import orjson
from bytewax.testing import TestingSink, TestingSource, run_main

from events.dead_letter import DeadLetter
from events.topics import Topic
from flows.kafka_source import KafkaRecord
from flows.loyalty import build_flow
from flows.sinks import FlowRecord, TopicRecord
from omnistream.settings import Settings
from state import keys
from state.doc_writer import FencedDoc
from tests.unit.loyalty.events import (
    DAY,
    T0,
    Record,
    fulfilment,
    link,
    order_cancel,
    product,
    purchase,
    redemption,
    return_,
    sale,
    void,
)

SETTINGS = Settings(loyalty_shards=3)


def records(events: list[Record], settings: Settings = SETTINGS) -> list[KafkaRecord]:
    offsets: dict[Topic, int] = {}
    out = []
    for topic, _, value in events:
        offsets[topic] = offsets.get(topic, -1) + 1
        out.append(KafkaRecord(settings.topic(topic), 0, offsets[topic], value))
    return out


def run(events: list[Record], settings: Settings = SETTINGS, batch_size: int = 5) -> list[FlowRecord]:
    out: list[FlowRecord] = []
    run_main(build_flow(settings, source=TestingSource(records(events, settings), batch_size=batch_size),
                        sink=TestingSink(out)))  # fmt: skip
    return out


def members(out: list[FlowRecord]) -> dict[str, dict[str, Any]]:
    """The newest document of every member (highest version)."""
    newest: dict[str, tuple[int, dict[str, Any]]] = {}
    for item in out:
        if type(item) is FencedDoc and item.key.startswith("omni:loyalty:{") and item.key.endswith("}"):
            doc = orjson.loads(item.doc)
            assert item.key == keys.loyalty_member(doc["customer_id"])
            if item.key not in newest or newest[item.key][0] < item.version:
                newest[item.key] = (item.version, doc)
    return {doc["customer_id"]: doc for _, doc in newest.values()}


def decisions(out: list[FlowRecord]) -> dict[str, dict[str, Any]]:
    return {orjson.loads(i.doc)["redemption_id"]: orjson.loads(i.doc) for i in out
            if type(i) is FencedDoc and ":redemption:" in i.key}  # fmt: skip


def entries(out: list[FlowRecord]) -> list[dict[str, Any]]:
    found = [orjson.loads(i.body) for i in out if type(i) is TopicRecord]
    assert all(type(i) is not TopicRecord or i.topic is Topic.LOYALTY for i in out)
    return found


def test_store_earn_online_redeem_returns_cancels_and_voids_reverse_in_proportion() -> None:
    events = [
        product("GROC-1", "grocery"),  # x2 in the sample rules
        sale("T1", "C1", T0, [("GROC-1", 2, 10.00), ("TOY-1", 1, 5.50)]),  # 2*10*2 + 5.5 = 45.5 -> 45
        return_("ret1", "T1", T0 + DAY, [("GROC-1", 1, 10.00)]),  # half the grocery line: 25.5 -> 25
        sale("T2", "C1", T0 + 2 * DAY, [("TOY-1", 4, 2.50)]),  # 10
        void("v2", "T2", T0 + 2 * DAY + 60),  # -> 0
        link("U1", "C1", T0 + 3 * DAY),
        purchase("O1", "U1", T0 + 3 * DAY + 10, [("TOY-1", 3, 10.00), ("TOY-2", 1, 7.00)]),  # 37
        fulfilment("f1", "O1", T0 + 3 * DAY + 20, "TOY-1", 3),
        order_cancel("c1", "O1", T0 + 3 * DAY + 30, "TOY-2"),  # TOY-2 line cancelled: 30
        sale("T3", None, T0 + 4 * DAY, [("TOY-1", 1, 100.0)]),  # no member: earns nothing
        sale("T9", "C2", T0 + 40 * DAY, [("TOY-1", 1, 1.0)]),  # moves event time past the return window
        redemption("R1", "C1", 50, T0 + 40 * DAY + 1),
        redemption("R1", "C1", 50, T0 + 40 * DAY + 1),  # a producer retry
        redemption("R2", "C1", 6, T0 + 40 * DAY + 2),  # 55 - 50 = 5 left: refused
        redemption("R3", "C404", 1, T0 + 40 * DAY + 3),
    ]
    out = run(events)

    docs = members(out)
    assert (docs["C1"]["available"], docs["C1"]["pending"], docs["C1"]["redeemed"]) == (5, 0, 50)
    assert (docs["C2"]["available"], docs["C2"]["pending"]) == (0, 1)
    assert set(docs) == {"C1", "C2"}
    got = {rid: (d["status"], d["reason"]) for rid, d in decisions(out).items()}
    assert got == {"R1": ("accepted", None), "R2": ("rejected", "insufficient_points"),
                   "R3": ("rejected", "unknown_customer")}  # fmt: skip
    c1 = [(e["kind"], e["ref"], e["points"], e["bucket"]) for e in entries(out) if e["customer_id"] == "C1"]
    assert ("earn", "T1", 25, "pending") in c1 or [e for e in c1 if e[1] == "T1" and e[0] in ("earn", "adjust")] == [
        ("earn", "T1", 45, "pending"),
        ("adjust", "T1", -20, "pending"),
    ]
    assert ("mature", "O1", 30, "available") in c1
    assert ("redeem", "R1", -50, "available") in c1
    assert ("redeem_rejected", "R2", 0, "none") in c1
    ids = [e["entry_id"] for e in entries(out)]
    assert len(ids) == len(set(ids)), "an entry was emitted twice"


def test_arrival_order_does_not_change_balances() -> None:
    events = [
        product("GROC-1", "grocery"),
        sale("T1", "C1", T0, [("GROC-1", 3, 3.33), ("TOY-1", 2, 1.25)]),
        return_("ret1", "T1", T0 + DAY, [("GROC-1", 2, 3.33)]),
        purchase("O1", "U1", T0 + 2 * DAY, [("TOY-1", 2, 9.99)]),
        link("U1", "C1", T0 + 3 * DAY),
        order_cancel("c1", "O1", T0 + 3 * DAY, "TOY-1"),
        sale("T2", "C1", T0 + 10 * DAY, [("TOY-3", 1, 12.0)]),
        sale("T9", "C9", T0 + 50 * DAY, [("TOY-1", 1, 1.0)]),
    ]
    forward = members(run(events))
    # Returns and cancels before their transactions, the link after everything, duplicates.
    shuffled = [events[0], events[2], events[5], events[1], events[3], events[6], events[2], events[4], events[7]]
    backward = members(run(shuffled, batch_size=2))
    strip = ("entries", "as_of")
    assert {c: {k: v for k, v in d.items() if k not in strip} for c, d in forward.items()} == {
        c: {k: v for k, v in d.items() if k not in strip} for c, d in backward.items()
    }
    # 3 * 3.33 * 2 + 2 * 1.25 = 22.48 -> with 2 of 3 grocery units returned: 6.66 + 2.5 = 9.16 -> 9; T2: 12
    assert forward["C1"]["available"] == 21


def test_malformed_members_events_are_dead_lettered_and_the_rest_goes_on() -> None:
    bad = [
        (Topic.MEMBERS, b"C1", b'{"type": "redemption", "customer_id": "C1", "points": -5}'),
        (Topic.MEMBERS, b"C1", b"not json"),
    ]
    out = run([sale("T1", "C1", T0, [("A", 1, 10.0)]), *bad])
    letters = [i for i in out if type(i) is DeadLetter]
    assert [(d.source_topic, d.offset) for d in letters] == [(SETTINGS.topic(Topic.MEMBERS), 0),
                                                              (SETTINGS.topic(Topic.MEMBERS), 1)]  # fmt: skip
    assert members(out)["C1"]["pending"] == 10


def test_a_resumed_shard_takes_the_rules_file_in_force_not_the_snapshots() -> None:

    from flows.loyalty_stages import BookStage, LedgerStage
    from operators.loyalty.rules import EarnRules

    old = EarnRules("old-version", {"pos": 9000})
    for stage in (BookStage(SETTINGS), LedgerStage(SETTINGS)):
        fresh = stage(None)
        fresh.state.rules = old
        resumed = stage(fresh.snapshot())
        assert resumed.state.rules == stage.rules and resumed.state.rules.version != "old-version"


def test_a_sale_dated_far_ahead_of_the_wall_clock_matures_no_points_early() -> None:
    # A till whose clock is a year ahead: its sale would move event time past every return window, and
    # every member's pending points would mature and then expire (measured without the refusal: C1 left with
    # nothing). The flow skips it (the inventory flow, which owns the till topic's dead letters, dead-letters it).
    year_ahead = time.time() + 365 * 86_400.0
    out = run([sale("T1", "C1", T0, [("TOY-1", 2, 10.0)]), sale("T2", "C2", year_ahead, [("TOY-1", 1, 5.0)])])

    docs = members(out)
    assert (docs["C1"]["available"], docs["C1"]["pending"]) == (0, 20)
    assert set(docs) == {"C1"}
