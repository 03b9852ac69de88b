"""The simulator's demand history: retail-shaped store sales whose planted risers the demand flow flags."""

from __future__ import annotations

from itertools import islice

import orjson
from bytewax.testing import TestingSink, TestingSource, run_main

from events.topics import Topic
from flows.demand import build_flow
from flows.kafka_source import KafkaRecord
from flows.sinks import FlowRecord
from omnistream.settings import Settings
from sim.catalog import Catalog
from sim.demand_history import DemandHistory
from sim.workload import Workload
from state import keys
from state.doc_writer import FencedDoc

END_TS = 1795305600.0 + 3 * 3600  # 2026-11-22 03:00 UTC: Saturday the 21st closes in New York an hour later
# The default locations (STORE-* in New York, US holidays); rising items on a short memory, which flags a
# take-off within days (the default, the point forecast's long memory, ranked better on the real log).
SETTINGS = Settings(demand_shards=2, demand_rising_alpha=0.25)


def run_history(history: DemandHistory) -> dict[str, dict[str, object]]:
    records = [KafkaRecord(SETTINGS.topic(r.topic), 0, i, r.value) for i, r in enumerate(history.records())]
    # A till sale on Sunday closes Saturday (demand moves the watermark; stock movements do not).
    closing = {"event_id": "close", "type": "sale", "ts": "2026-11-22T06:00:00.000Z", "schema_version": 1,
               "store_id": "STORE-01", "register_id": "R1", "cashier_id": "C1", "txn_id": "T-close", "currency": "USD",
               "items": [{"sku": "SKU-00001", "qty": 1, "unit_price": 1.0}], "total": 1.0,
               "payment": {"method": "cash"}}  # fmt: skip
    records.append(KafkaRecord(SETTINGS.topic(Topic.POS), 0, len(records), orjson.dumps(closing)))
    out: list[FlowRecord] = []
    run_main(build_flow(SETTINGS, source=TestingSource(records, batch_size=500), sink=TestingSink(out)))
    newest: dict[str, FencedDoc] = {}
    for item in out:
        if type(item) is FencedDoc and (item.key not in newest or item.version > newest[item.key].version):
            newest[item.key] = item
    return {key: orjson.loads(doc.doc) for key, doc in newest.items()}


def test_the_flow_flags_the_planted_risers_at_every_store_and_forecasts_the_weekly_shape() -> None:
    catalog = Catalog(seed=11, n_skus=200, n_stores=2, n_warehouses=1)
    history = DemandHistory(seed=11, catalog=catalog, days=49, end_ts=END_TS, n_skus=60, n_stores=2, risers=3)
    docs = run_history(history)
    for store in ("STORE-01", "STORE-02"):
        rising = docs[keys.rising(store)]
        assert rising["as_of"] == "2026-11-21"
        top = [item["sku"] for item in rising["items"][:10]]  # type: ignore[index]
        assert set(history.risers) <= set(top), (store, history.risers, top)
    # Saturdays sell twice as much as Mondays: the forecast of a steady best seller says so.
    best = docs[keys.forecast(history.products[0].sku, "STORE-01")]
    by_date = {day["date"]: day["forecast"] for day in best["days"]}  # type: ignore[union-attr]
    assert by_date["2026-11-28"] > 1.5 * by_date["2026-11-23"]  # Saturday against Monday


def test_the_workload_publishes_the_history_after_its_opening_and_nothing_changes_without_it() -> None:
    sizes = {"n_skus": 80, "n_stores": 2, "n_warehouses": 1, "n_users": 50}
    plain = [r.value for r in Workload(seed=5, **sizes).records(3000)]  # type: ignore[arg-type]
    assert plain == [r.value for r in Workload(seed=5, demand_history_days=0, **sizes).records(3000)]  # type: ignore[arg-type]
    workload = Workload(seed=5, demand_history_days=14, **sizes)  # type: ignore[arg-type]
    with_history = list(islice(workload.records(), 20_000))
    first = next(i for i, r in enumerate(with_history) if r.value.startswith(b'{"event_id":"dh-'))
    assert [r.value for r in with_history[:first]] == plain[:first]  # the opening as it was
    assert workload.demand_history is not None and len(workload.demand_history.risers) == 4
    history = [r for r in with_history if r.value.startswith(b'{"event_id":"dh-')]
    assert history and all(orjson.loads(r.value)["ts"] < "2026-11-22" for r in history)
