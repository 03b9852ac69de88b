"""On the simulator's traffic, the deployed attribution flow finds the campaign the simulator planted.

`sim.loyalty` makes sessions of `black-friday` convert more often than the other campaigns'.
The flow (`flows.attribution.build_flow`, run in process) must rank it first among the campaigns
under the data-driven (Markov) model. Visits without a campaign, `(direct)`, hold most of the
credit on this traffic (most sessions are untagged) and are not a campaign to rank.
"""

from __future__ import annotations

from typing import Any

import orjson
from bytewax.testing import TestingSink, TestingSource, run_main

from flows.attribution import INPUT_TOPICS, build_flow
from flows.kafka_source import KafkaRecord
from flows.sinks import FlowRecord
from omnistream.settings import Settings
from operators.attribution.journeys import DIRECT
from operators.attribution.report import report
from sim.loyalty import PLANTED_CAMPAIGN
from sim.workload import Workload
from state.doc_writer import FencedDoc


def day_documents(n_records: int, seed: int) -> list[dict[str, Any]]:
    # A short look-back, so that journeys without a conversion close within the stream's hours.
    settings = Settings(attribution_lookback_s=3600.0)
    workload = Workload(seed=seed, n_skus=500, n_stores=5, n_warehouses=2, n_users=3000, events_per_s=5.0)
    offsets: dict[str, int] = {}
    records = []
    for r in workload.records(n_records):
        if r.topic in INPUT_TOPICS:
            offsets[r.topic] = offsets.get(r.topic, -1) + 1
            records.append(KafkaRecord(settings.topic(r.topic), 0, offsets[r.topic], r.value))
    out: list[FlowRecord] = []
    run_main(build_flow(settings, source=TestingSource(records, batch_size=1000), sink=TestingSink(out)))
    newest: dict[str, tuple[int, dict[str, Any]]] = {}
    for item in out:
        if type(item) is FencedDoc:
            doc = orjson.loads(item.doc)
            if doc["day"] not in newest or newest[doc["day"]][0] < item.version:
                newest[doc["day"]] = (item.version, doc)
    return [doc for _, doc in newest.values()]


def test_the_planted_campaign_ranks_first_under_the_data_driven_model() -> None:
    docs = day_documents(100_000, seed=5)
    answer = report(docs, "markov", "campaign")
    campaigns = [c for c in answer["channels"] if c["channel"] not in (DIRECT, "(referral)")]
    assert answer["conversions"] > 2000
    assert campaigns[0]["channel"] == PLANTED_CAMPAIGN, campaigns
    assert campaigns[0]["share"] > 1.15 * campaigns[1]["share"], campaigns
    assert abs(sum(c["share"] for c in answer["channels"]) - 1.0) < 1e-3
