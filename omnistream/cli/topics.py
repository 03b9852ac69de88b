"""`omnistream topics ...`: the contract's Kafka topics."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from omnistream.cli.common import console, fail, load_settings, require_broker

topics_app = typer.Typer(help="The contract's Kafka topics.", no_args_is_help=True)


@topics_app.command("create")
def topics_create(
    partitions: Annotated[
        int | None, typer.Option(min=1, max=1024, help="Partitions per topic [default: OMNISTREAM_TOPIC_PARTITIONS].")
    ] = None,
) -> None:
    """Create the contract's topics (idempotent) and show which were created."""
    settings = load_settings(topic_partitions=partitions)
    require_broker(settings)
    from confluent_kafka import KafkaException

    from omnistream.kafka_admin import create_topics

    try:
        result = create_topics(settings.kafka.brokers, settings.topic.prefix, settings.topic.partitions,
                               security=settings.kafka.security_config())  # fmt: skip
    except KafkaException as ex:
        fail(f"creating topics at {settings.kafka.brokers} failed: {ex}")
    table = Table(title=f"topics at {settings.kafka.brokers}")
    table.add_column("topic")
    table.add_column("status")
    for name, status in sorted(result.items()):
        table.add_row(name, f"[green]{status}[/]" if status == "created" else status)
    console.print(table)
