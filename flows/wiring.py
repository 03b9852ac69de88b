"""The two ends every flow shares: its topics in and decoded, its records out to the sink.

A flow's `build_flow` starts with `decoded_input` and ends with `records_out`, so that what is
between (routing, keyed stages) is all its module says. Both keep the step ids the flows had
(`<flow>_in`, `decode`, `records_out`): they are part of the recovery state (flows/registry.py).
An injected `source` or `sink` replaces the Kafka source or the Redis/Kafka `RecordSink`, and
then nothing connects, neither here nor at build time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import Source
from bytewax.outputs import Sink

from events.topics import Topic
from flows.decoding import BatchDecoder
from flows.kafka_source import KafkaRecord, kafka_source
from flows.paced_source import PacedPartitions
from flows.sinks import FlowRecord, RecordSink
from omnistream.settings import Settings

Out = TypeVar("Out")


def decoded_input(
    flow: Dataflow,
    settings: Settings,
    topics: Iterable[Topic],
    decoder: Callable[[dict[str, Topic]], BatchDecoder[Out]],
    source: Source[KafkaRecord] | None = None,
    pace_s: float = 0.0,
) -> Stream[Out]:
    """The flow's `topics` (or `source`), decoded a batch at a time by the flow's `decoder`.

    `decoder` is given the topic names read, each mapped to its contract topic; what the decoder
    makes of a batch (routed items, dead letters of the topics the flow owns) is the stream.
    `pace_s` > 0: the Kafka partitions, once caught up, are polled together on a beat that long
    (`flows.paced_source`); an injected `source` is taken as it is. Events dated more than
    `Settings.max_future_s` ahead of the wall clock are refused (`flows.decoding.ahead_of_clock`).
    """
    source_topics = {settings.topic(topic): topic for topic in topics}
    if source is None:
        source = kafka_source(settings, list(source_topics), flow.flow_id)
        if pace_s > 0:
            source = PacedPartitions(source, pace_s)
    raw = op.input(f"{flow.flow_id}_in", flow, source)
    decode = decoder(source_topics)
    decode.refuse_future(settings.max_future_s)
    return op.flat_map_batch("decode", raw, decode.decode_batch)


def records_out(
    flow_name: str,
    records: Stream[FlowRecord],
    settings: Settings,
    generation: str = "",
    sink: Sink[FlowRecord] | None = None,
) -> None:
    """Everything the flow emits, to `sink` or the flow's `RecordSink` (one Redis pipeline per batch)."""
    op.output("records_out", records, sink if sink is not None else RecordSink(flow_name, settings, generation))
