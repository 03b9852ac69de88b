"""Customers flow: who each customer is right now, and the moments that call for a message.

Consumes loyalty `sale`s and `return`s of `omni.pos`, identified shoppers' views, carts,
orders and payment results on `omni.clickstream`, consent changes on `omni.customers`, and
the inventory flow's sellable flips on `omni.availability`. Keeps per customer, by event
time: RFM inputs (last purchase, orders and spend over decayed windows), channel mix,
preferred store, lifecycle stage (`operators.customers.lifecycle`), an expected-value
estimate; writes each changed customer's document and segment membership to Redis, fenced
by version. Triggers (`events.triggers`) go to `omni.triggers` and its Redis stream.

    decode ─┬─> clock ─> timers (by due hour) ─ wake-ups ─┐
            │    ^ ticks, due times                    v
            ├─> customers (by customer bucket) ─┬─ candidates ───────────────────────┐
            │                                   └─ views, ticks ─> stock (by SKU) ──┴─> gate (by customer) ─> triggers
            ├─ flips ─────────────────────────────────────────────^                     ^ consent, ticks
            │   customers ─ RFM bucket moves ─> population (by scope: global, country) ─> histograms ─> records
            └─ dead letters (consent and availability records: this flow owns them) ─────────────────> records

Timers fire by event time: every batch ticks the clock with its newest event time per
partition (`operators.customers.clock`), and the times each activity may make its customer due
go to the hour keys of the timers step, which wake a customer's bucket when the watermark passes
them (`operators.customers.timers`), so a cart's deadline passes even when its shopper sends
nothing more, and a snapshot writes only the buckets touched. The watermark reaches the gate shards
through the customers stage's relay key, after what the woken buckets sent them, so the gate's clock
does not run ahead of the candidates it still has to receive (the stock shards hear it seldom: their
clock only says when to forget old flips and watches). The gate releases a
trigger only once the watermark is past its due time, after consent and cooldown; trigger
ids are derived from their cause, so a recovery replay re-sends the same ids (the Redis
stream adds each once). docs/customers.md has the rules and the trigger catalogue.

Run it with `omnistream flow customers` (recovery on by default); see `flows.run`.
"""

from __future__ import annotations

from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.outputs import Sink

from events.topics import Topic
from flows.customers_stages import (
    CUSTOMER_TOPICS,
    FLOW,
    ClockLogic,
    CustomerLogic,
    Decoder,
    GateLogic,
    PopulationLogic,
    Stage,
    StockLogic,
    TimerLogic,
    config_of,
)
from flows.kafka_source import KafkaRecord
from flows.keyed import keyed_stage, to_stage
from flows.sinks import FlowRecord
from flows.wiring import decoded_input, records_out
from omnistream.settings import Settings

INPUT_TOPICS = CUSTOMER_TOPICS


def build_flow(
    settings: Settings,
    generation: str = "",
    *,
    source: Source[KafkaRecord] | None = None,
    sink: Sink[FlowRecord] | None = None,
) -> Dataflow:
    """Purchases, clicks, payments, consent and availability in; customer documents, triggers, dead letters out.

    `generation` names the lineage of flow state (see `flows.launcher.ensure_recovery`). `source` and `sink`
    default to the topics in Kafka (polled on a beat while caught up, `flows.paced_source`, unless
    `customers.poll_pace_s` is 0) and the Redis/Kafka `RecordSink`; nothing connects while building.
    """
    flow = Dataflow(FLOW)
    s = settings.customers
    config = config_of(settings)

    def decoder(source_topics: dict[str, Topic]) -> Decoder:
        return Decoder(source_topics, s.shards, s.max_future_s, config, s.buckets)

    decoded = decoded_input(flow, settings, INPUT_TOPICS, decoder, source, pace_s=s.poll_pace_s)
    to_clock = to_stage("to_clock", decoded, Stage.CLOCK)
    clock_out = keyed_stage("clock", to_clock.trues, ClockLogic(settings))
    timers_out = keyed_stage("timers", to_stage("to_timers", clock_out, Stage.TIMERS).trues, TimerLogic())
    # Activities before wake-ups: a bucket woken in a step has what the decoder sent it before the tick.
    to_customers = to_stage("to_customers", op.merge("buckets_in", to_clock.falses, timers_out), Stage.CUSTOMERS)
    customers_out = keyed_stage("customers", to_customers.trues, CustomerLogic(settings))
    to_stock = to_stage("to_stock", op.merge("stock_in", to_customers.falses, customers_out), Stage.STOCK)
    stock_out = keyed_stage("stock", to_stock.trues, StockLogic(settings))
    to_gate = to_stage("to_gate", op.merge("gate_in", to_stock.falses, stock_out), Stage.GATE)
    gate_out = keyed_stage("gate", to_gate.trues, GateLogic(settings))
    to_population = to_stage("to_population", to_gate.falses, Stage.POPULATION)
    population_out = keyed_stage("population", to_population.trues, PopulationLogic())
    # What is left: dead letters and customer documents, the triggers the gate let out, the populations.
    records: Any = op.merge("records", to_population.falses, gate_out, population_out)
    records_out(FLOW, records, settings, generation, sink)
    return flow


__all__ = ["FLOW", "INPUT_TOPICS", "Stage", "build_flow"]
