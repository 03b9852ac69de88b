"""`omnistream simulate` and `omnistream replay`: simulated traffic, or a JSONL file, published to Kafka."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from events.topics import Topic
from omnistream.cli.common import (
    DEFAULT_RATE_EPS,
    Pacing,
    console,
    fail,
    load_settings,
    require_broker,
    resolve_topic,
    simulated_workload,
)
from omnistream.cli.streams import Counts, GracefulStop, Opening, print_counts, progress, until_wall_time

if TYPE_CHECKING:
    from sim.record import SimRecord


_DURATION_HELP = "Stop after this many seconds (with --out-dir: after seconds × rate events past the opening)."


def simulate(
    rate: Annotated[
        float, typer.Option(min=0.0, help="Events per second after the opening; 0 publishes as fast as it can.")
    ] = DEFAULT_RATE_EPS,
    duration: Annotated[float | None, typer.Option(min=0.0, help=_DURATION_HELP)] = None,
    events: Annotated[int | None, typer.Option(min=0, help="Stop after this many events.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the workload [default: OMNISTREAM_SIM_SEED].")] = None,
    out_dir: Annotated[
        Path | None, typer.Option(help="Write JSONL files, one per topic, here instead of publishing to Kafka.")
    ] = None,
    api: Annotated[
        str | None,
        typer.Option(help="Live only: ask this API for recommendations as a storefront and click some of them."),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="OMNISTREAM_SIM_API_KEY", help="A storefront key for --api.", show_default=False),
    ] = None,
) -> None:
    """Generate the simulated omnichannel workload and publish it to Kafka (or write JSONL files).

    The stream opens with the catalog and the opening stock, published as fast as the broker takes them; the
    traffic after that is paced at --rate, dated by the wall clock. Without --duration or --events it runs until
    Ctrl-C, which ends the stream after everything sent so far is acknowledged.
    """
    settings = load_settings(sim_seed=seed)
    if duration is not None and events is not None:
        fail("give --duration or --events, not both")
    if out_dir is not None and duration is None and events is None:
        fail("--out-dir needs --duration or --events: a file cannot grow forever")
    if api is not None and (out_dir is not None or not api_key):
        fail("--api needs a live run (no --out-dir) and a key (--api-key or OMNISTREAM_SIM_API_KEY)")
    if out_dir is None:
        require_broker(settings)
    from sim import publish as sim_publish
    from sim.timestamps import rfc3339_ms

    params: Pacing = {"events_per_s": rate} if rate > 0 else {}  # the spacing of event times
    if out_dir is None and rate > 0:
        params["start_ts"] = time.time()  # live traffic is dated now, so lag metrics mean something
    workload = simulated_workload(settings.sim.seed, **params)
    counts = Counts()
    with GracefulStop() as stop, progress(events) as advance:
        stream = stop.guard(counts.tally(workload.records(events), advance))
        if out_dir is not None:
            opening = Opening(stream, rfc3339_ms(workload.start_ts + 1.0))
            rest: Iterator[SimRecord] = opening.rest()
            if duration is not None:
                # Event times are not monotonic (late and early events), so the count stands for the duration.
                rest = itertools.islice(rest, round(duration * workload.events_per_s))
            sim_publish.write_jsonl(itertools.chain(opening, rest), out_dir)
        else:
            if duration is not None:
                stream = until_wall_time(stream, time.monotonic() + duration)
            if api is not None and api_key:
                from sim.storefront import Storefront

                storefront = Storefront(api, api_key, seed=settings.sim.seed)
                stream = storefront.shop(stream)
            publisher = sim_publish.KafkaPublisher(settings.kafka.brokers, settings.kafka.security_config())
            names = {topic: settings.topic(topic) for topic in Topic}
            opening = Opening(stream, rfc3339_ms(workload.start_ts + 1.0))
            try:
                publisher.publish(opening, names)  # the catalog and opening stock, unpaced
                publisher.publish(opening.rest(), names, rate)
            except sim_publish.PublishError as ex:
                fail(f"publishing to {settings.kafka.brokers} failed: {ex}")
    if stop.requested:
        console.print("stopped: everything sent was acknowledged")
    print_counts(counts, f"written to {out_dir}" if out_dir else f"published to {settings.kafka.brokers}")


def replay(
    file: Annotated[Path, typer.Argument(help="JSONL file: one raw message value per line.")],
    topic: Annotated[str, typer.Option(help="Topic: `inventory`, or a full name such as `omni.inventory`.")],
    rate: Annotated[float, typer.Option(min=0.0, help="Events per second; 0 publishes as fast as it can.")] = 0.0,
) -> None:
    """Publish a JSONL file of raw events to one topic, keyed as the contract says."""
    settings = load_settings()
    if not file.is_file():
        fail(f"no such file: {file}")
    chosen = resolve_topic(topic, settings)
    require_broker(settings)
    from sim import publish as sim_publish

    try:
        records = list(sim_publish.jsonl_records(file, chosen))  # a bad line stops us before anything is sent
    except (OSError, ValueError) as ex:
        fail(f"cannot read {file}: {ex}")
    publisher = sim_publish.KafkaPublisher(settings.kafka.brokers, settings.kafka.security_config())
    counts = Counts()
    with GracefulStop() as stop, progress(len(records)) as advance:
        try:
            # publish() waits for every acknowledgement before it returns, also when Ctrl-C ended the stream early.
            published = publisher.publish(stop.guard(counts.tally(records, advance)), {chosen: settings.topic(chosen)},
                                          rate)  # fmt: skip
        except sim_publish.PublishError as ex:
            fail(f"publishing to {settings.kafka.brokers} failed: {ex}")
    sent = sum(published.values())
    note = f" (stopped early: {len(records) - sent:,} not sent)" if stop.requested else ""
    console.print(f"published {sent:,} events from {file} to {settings.topic(chosen)}{note}", highlight=False)
