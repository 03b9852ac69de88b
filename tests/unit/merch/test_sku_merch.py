"""One SKU's merchandising state: suggestions made, changed only materially, withdrawn when they stop holding."""

from __future__ import annotations

import dataclasses
import math
import pickle
from datetime import UTC, datetime

import msgspec

from events.models import PriceChange, ProductUpsert
from events.suggestions import MarkdownSuggestion, TransferSuggestion
from operators.merch.markdown import MarkdownPolicy
from operators.merch.sku_merch import Hold, MerchConfig, MerchMove, MerchShard, Release, Role, SkuMerch
from operators.merch.transfers import TransferPolicy
from operators.merch.velocity import DAY_S
from operators.movements import Move, StockMovement

CONFIG = MerchConfig(TransferPolicy(min_lot=1), MarkdownPolicy(season_end_ts=60 * DAY_S), review_interval_s=DAY_S)


def move(loc: str, qty: int, day: float, role: Role = Role.STOCK, event_id: str = "", kind: Move = Move.ON_HAND,
         transfer: tuple[str, str] = ("", "")) -> MerchMove:  # fmt: skip
    event_id = event_id or f"{loc}-{qty}-{day}-{role.name}"
    return MerchMove(StockMovement("SKU-1", loc, kind, qty, day * DAY_S, event_id), role, *transfer)


def price(day: float, value: float, *, upsert: bool = False) -> ProductUpsert | PriceChange:
    envelope = {"event_id": f"p{day}{upsert}", "ts": datetime.fromtimestamp(day * DAY_S, UTC), "schema_version": 1}
    if upsert:
        return ProductUpsert(**envelope, sku="SKU-1", name="Mug", category="kitchen", price=value)  # type: ignore[arg-type]
    return PriceChange(**envelope, sku="SKU-1", price=value, currency="EUR")  # type: ignore[arg-type]


def selling(sku: SkuMerch, days: range, per_day: dict[str, int]) -> None:
    for day in days:
        for loc, qty in per_day.items():
            sku.apply(move(loc, -qty, day, Role.DEMAND))


def test_a_transfer_is_published_once_and_again_only_when_its_quantity_changes() -> None:
    sku = SkuMerch("SKU-1", CONFIG)
    sku.apply(price(0, 20.0, upsert=True))
    sku.apply(move("S1", 30, 0, Role.RECEIPT))
    sku.apply(move("S2", 300, 0, Role.RECEIPT))
    selling(sku, range(1, 10), {"S1": 3, "S2": 1})
    records, docs = sku.review(9 * DAY_S)
    (first,) = records
    assert isinstance(first, TransferSuggestion) and (first.from_location, first.to_location) == ("S2", "S1")
    assert first.status == "open" and first.suggestion_id == "transfer:SKU-1:S2:S1"
    assert [(d.kind, d.open) for d in docs] == [("transfer", True)]
    assert msgspec.json.decode(docs[0].doc)[0]["qty"] == first.qty
    assert sku.review(9 * DAY_S) == ([], [])  # nothing changed: nothing re-published
    sku.apply(move("S1", -5, 9.5, Role.DEMAND))  # more demand: a bigger transfer
    (second,), _ = sku.review(9.5 * DAY_S)
    assert isinstance(second, TransferSuggestion)
    assert second.qty > first.qty and second.version > first.version and second.status == "open"


def test_a_transfer_is_withdrawn_when_the_receiver_is_restocked() -> None:
    sku = SkuMerch("SKU-1", CONFIG)
    sku.apply(price(0, 20.0))
    sku.apply(move("S1", 30, 0, Role.RECEIPT))
    sku.apply(move("S2", 300, 0, Role.RECEIPT))
    selling(sku, range(1, 10), {"S1": 3, "S2": 1})
    (opened,), _ = sku.review(9 * DAY_S)
    sku.apply(move("S1", 100, 9.2, Role.RECEIPT))  # the supplier delivered
    (withdrawn,), docs = sku.review(9.2 * DAY_S)
    assert withdrawn.status == "withdrawn" and withdrawn.suggestion_id == opened.suggestion_id
    assert withdrawn.version > opened.version and "no longer holds" in withdrawn.reason
    assert [(d.kind, d.open, d.doc) for d in docs] == [("transfer", False, b"[]")]


def test_a_transfer_on_its_way_counts_even_if_it_arrives_before_its_departure_is_seen() -> None:
    sku = SkuMerch("SKU-1", CONFIG)
    sku.apply(move("S1", 5, 0, Role.ARRIVED, transfer=("T1", "S2")))  # arrival first
    sku.apply(move("S2", -5, 0, Role.SENT, transfer=("T1", "S1")))
    assert sku.transit == {} and sku.arrived == {}
    sku.apply(move("S2", -7, 1, Role.SENT, transfer=("T2", "S1")))
    assert [(p.location_id, p.inbound) for p in sku.positions(DAY_S)] == [("S1", 7), ("S2", 0)]
    sku.apply(move("S3", 1, 20, Role.RECEIPT))  # 19 days on: the transfer never arrived, it is forgotten
    assert sku.transit == {}


def test_a_redelivered_sale_is_demand_once() -> None:
    once, twice = SkuMerch("SKU-1", CONFIG), SkuMerch("SKU-1", CONFIG)
    once.apply(move("S1", -2, 1, Role.DEMAND, "sale-1"))
    twice.apply(move("S1", -2, 1, Role.DEMAND, "sale-1"))
    twice.apply(move("S1", -2, 1, Role.DEMAND, "sale-1"))
    assert twice.rates["S1"].per_day(DAY_S) == once.rates["S1"].per_day(DAY_S) > 0
    assert twice.ledger.stock() == once.ledger.stock()


def test_a_slow_seller_gets_a_markdown_that_is_withdrawn_when_it_starts_to_sell() -> None:
    sku = SkuMerch("SKU-1", CONFIG)
    sku.apply(price(0, 40.0, upsert=True))
    sku.apply(move("S1", 200, 0, Role.RECEIPT))
    selling(sku, range(1, 30, 3), {"S1": 1})  # a unit every three days: 170 days of cover, 30 days left
    records, docs = sku.review(30 * DAY_S)
    (markdown,) = records
    assert isinstance(markdown, MarkdownSuggestion) and markdown.status == "open"
    assert markdown.suggested_price == 32.0 and markdown.discount == 0.2  # half price is wanted: one 20% change
    assert [(d.kind, d.open) for d in docs] == [("markdown", True)]
    selling(sku, range(30, 31), {"S1": 3})
    sku.apply(price(31, 32.0))  # the merchandiser took it
    records, docs = sku.review(31 * DAY_S)
    assert [(r.kind, r.status) for r in records] == [("markdown", "withdrawn")]
    assert [(d.kind, d.open, d.doc) for d in docs] == [("markdown", False, b"null")]


def test_stock_age_is_the_average_age_of_the_units_received() -> None:
    sku = SkuMerch("SKU-1", CONFIG)
    sku.apply(move("S1", 10, 0, Role.RECEIPT))
    sku.apply(move("S1", 10, 10, Role.RECEIPT))
    assert sku.stock_since == 5 * DAY_S
    sku.apply(move("S1", -20, 11, Role.DEMAND))
    sku.apply(move("S1", 4, 12, Role.RECEIPT))  # sold out in between: fresh stock
    assert sku.stock_since == 12 * DAY_S


def test_a_shard_reviews_every_sku_at_each_tick_of_its_clock_and_pickles() -> None:
    shard = MerchShard(CONFIG)
    shard.apply([price(0, 40.0, upsert=True), move("S1", 200, 0, Role.RECEIPT), move("S1", -1, 1, Role.DEMAND)])
    # SKU-1 is quiet from day 1; another SKU's events move the shard's clock on, past SKU-1's 14-day stock age.
    other = MerchMove(StockMovement("SKU-2", "S1", Move.ON_HAND, 1, 20 * DAY_S, "x"), Role.RECEIPT)
    records, _ = shard.apply([other])
    assert [(r.sku, r.kind, r.ts) for r in records] == [("SKU-1", "markdown", "1970-01-21T00:00:00.000Z")]
    restored = pickle.loads(pickle.dumps(shard))
    assert restored.skus["SKU-1"].open_markdown == shard.skus["SKU-1"].open_markdown
    for name in ("seen", "step", "touched", "ahead", "holds", "till_holds", "finished"):  # the earlier shape
        del shard.__dict__[name]
    older = pickle.loads(pickle.dumps(shard))
    assert (older.seen, older.ahead, older.holds, older.till_holds) == (shard.clock, [], {}, {})
    assert older.apply([move("S1", -1, 21, Role.DEMAND)]) is not None and older.seen == 21 * DAY_S


def test_a_store_that_sold_out_keeps_the_velocity_it_sold_at() -> None:
    sku = SkuMerch("SKU-1", CONFIG)
    sku.apply(price(0, 20.0))
    sku.apply(move("S1", 20, 0, Role.RECEIPT))
    selling(sku, range(1, 11), {"S1": 2})  # sold out on day 10
    at_sellout = sku.positions(10 * DAY_S)[0].per_day
    assert [(p.available, round(p.per_day, 6)) for p in sku.positions(30 * DAY_S)] == [(0, round(at_sellout, 6))]
    sku.apply(move("S1", 5, 30, Role.RECEIPT))  # restocked: its clock runs again from here
    assert sku.positions(37 * DAY_S)[0].per_day < at_sellout * 0.6


def test_a_topic_read_ahead_of_the_till_sales_does_not_get_a_hot_sku_marked_down() -> None:
    """The transient markdown: the clickstream read at day 16 while the till sales still wait at day 1.

    Without holds, the shard's clock jumps to day 16 and judges SKU-1 on its 16-day-old stock with none of its
    sales applied: a markdown for a SKU that sells 10 a day, withdrawn as soon as the sales come in. The
    decoder's `Hold` (the oldest event time its unread partitions may still bring) keeps the clock back
    until the sales are in; then the reviews see them, in event-time order.
    """
    config = MerchConfig(TransferPolicy(min_lot=1), MarkdownPolicy(season_end_ts=60 * DAY_S), review_interval_s=DAY_S)
    catalog_and_stock = [price(0, 20.0, upsert=True), move("S1", 400, 0, Role.RECEIPT)]
    read_ahead = [move("S1", -1, 16, Role.DEMAND, "web-order")]  # an online order, read before the till sales
    sales = [move("S1", -10, day + 0.5, Role.DEMAND) for day in range(16)]

    unheld = MerchShard(config)
    records, _ = unheld.apply([*catalog_and_stock, *read_ahead, *sales])
    records += unheld.finish()[0]  # the end of the input: the late sales are reviewed
    assert [(r.kind, r.status) for r in records if r.kind == "markdown"] == [("markdown", "open"),
                                                                            ("markdown", "withdrawn")]  # fmt: skip

    held = MerchShard(dataclasses.replace(config, held=True))
    out = held.apply([Hold("w", 1, -math.inf), *catalog_and_stock])  # first batch: the till partition is unread
    out += held.apply([Hold("w", 2, -math.inf), *read_ahead])
    assert held.clock == -math.inf and len(held.ahead) == 3  # nothing judged: every item waits
    # The till sales are read (nothing is left unread); they come through the store journal, then its release.
    out += held.apply([Hold("w", 3, math.inf, till=0.5 * DAY_S, stores=1)])
    assert held.clock == 0.5 * DAY_S
    out += held.apply([*sales, Release("S1", "w", 3)])
    assert held.clock == 16 * DAY_S and not held.ahead
    markdowns = [r for r in out[0] + out[2] + out[4] + out[6] if r.kind == "markdown"]  # type: ignore[operator]
    assert markdowns == []
    assert held.skus["SKU-1"].ledger.stock().locations[0].on_hand == 400 - 1 - 160
