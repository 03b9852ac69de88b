"""Omnistream's configuration: one typed `Settings`, read from `OMNISTREAM_*` variables.

Defaults run the local stack (`omnistream up`). A bad value stops start-up
with one line naming the variable (`settings_or_exit`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from events.topics import Topic

Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """Every knob of Omnistream, with the environment variable that sets it."""

    model_config = SettingsConfigDict(env_prefix="OMNISTREAM_", extra="ignore", frozen=True)

    kafka_brokers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port.")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="redis://, rediss://, unix://, redis+sentinel://host:port/service or redis+cluster://host:port.",
    )
    topic_prefix: str = Field("omni.", description="Prefix of every topic name.")
    topic_partitions: int = Field(4, ge=1, le=1024, description="Partitions per topic when Omnistream creates topics.")
    api_host: str = Field("127.0.0.1", description="Address the API listens on.")
    api_port: Port = Field(8000, description="Port the API listens on.")
    api_redis_timeout_ms: int = Field(
        80, ge=5, le=10_000, description="Redis timeout of the API; past it a request gets 503."
    )
    recovery_dir: Path | None = Field(
        Path(".omnistream/recovery"), description="Bytewax recovery partitions; empty disables recovery."
    )
    recovery_partitions: int = Field(1, ge=1, le=64, description="Recovery partitions (SQLite files).")
    snapshot_interval_s: float = Field(
        30.0, gt=0, description="Seconds between recovery snapshots (epoch); at most this much input is replayed."
    )
    backup_interval_s: float = Field(0.0, ge=0, description="How long old snapshots are kept for lagging workers.")
    workers: int = Field(1, ge=1, le=64, description="Bytewax worker threads per flow process.")
    processes: int = Field(1, ge=1, le=64, description="Bytewax processes per flow (a loopback cluster locally).")
    kafka_batch_size: int = Field(5000, ge=1, le=100_000, description="Messages per Kafka poll in the flows.")
    kafka_fetch_wait_ms: int = Field(
        10,
        ge=1,
        le=10_000,
        description="How long a flow's Kafka fetch that finds nothing waits at the broker (ms). 10 suits the local "
        "broker, which does not answer a waiting fetch when data arrives; Apache Kafka does, so 100-500 costs it "
        "no latency and fewer idle requests.",
    )
    dedup_window_s: float = Field(
        3_600.0,
        ge=3600.0,
        description="Event-time window in which a repeated event_id is dropped, and a sale can be voided (min 1 h).",
    )
    count_window_s: float = Field(
        6 * 3_600.0,
        ge=3600.0,
        description="Event-time window in which movements are kept so a late cycle count can be applied exactly.",
    )
    order_retention_s: float = Field(
        7 * 86_400.0, ge=3600.0, description="Event time a closed order line is remembered (late cancels, duplicates)."
    )
    low_stock_threshold: int = Field(5, ge=0, description="available at or below this (and above 0) raises low_stock.")
    flow_metrics_port: int = Field(
        9108,
        ge=0,
        le=65535,
        description="Base Prometheus port of the flows: base + 16 x the flow's position in FLOWS + the process index"
        " (inventory 9108, recommend 9124, fraud 9140); 0 disables.",
    )
    flow_stop_at_end: bool = Field(
        False, description="Stop a flow once all input present at start is consumed (replays, tests, benchmarks)."
    )
    sim_seed: int = Field(7, description="Seed of the simulator.")

    # --- fraud flow (flows/fraud.py) and its API ---------------------------------------------------------
    fraud_rules_path: Path = Field(
        Path("deploy/fraud/rules.toml"), description="Versioned fraud rules file (TOML), reloaded live when it changes."
    )
    fraud_rules_check_s: float = Field(
        2.0, gt=0, le=3600, description="Wall seconds between checks of the rules file's modification time."
    )
    fraud_score_ttl_s: float = Field(
        7 * 86_400.0, gt=0, description="How long a payment's score stays readable at GET /v1/scores/{id}."
    )
    fraud_review_threshold: float | None = Field(
        None, ge=0, le=1, description="Overrides the rules file's review threshold (score at or above: review)."
    )
    fraud_block_threshold: float | None = Field(
        None, ge=0, le=1, description="Overrides the rules file's block threshold (score at or above: block)."
    )
    fraud_shards: int = Field(
        4,
        ge=1,
        le=1024,
        description="Keyed shards per fraud stage (cards, shoppers, stores, scorers); a label meets its payment's "
        "features on crc32(payment id) % shards.",
    )
    fraud_max_entities: int = Field(
        50_000, ge=100, description="Cards, shoppers or stores kept per shard at most (least recently active go)."
    )
    fraud_dedup_ids: int = Field(
        200_000, ge=1000, description="Recent event ids kept per card shard to drop producer retries."
    )
    fraud_label_retention_s: float = Field(
        3 * 86_400.0, ge=60, description="Event time a payment's scoring features wait for its fraud_label."
    )
    fraud_label_max_pending: int = Field(
        50_000, ge=1000, description="Payments awaiting a label kept per scorer shard at most (oldest go first)."
    )
    fraud_alert_quiet_s: float = Field(
        1_800.0, ge=1, description="Event time without suspicious payments before a fraud alert resolves."
    )
    ops_silence_store_s: float = Field(
        300.0, ge=1, description="Event time a store may go without a sale (while others sell) before an alert."
    )
    ops_silence_register_s: float = Field(
        900.0, ge=1, description="Event time an active register may stay silent before an alert."
    )
    ops_tick_s: float = Field(
        60.0, ge=1, description="Event-time spacing of the operational checks (silence, rate against baseline)."
    )
    api_sse_keepalive_s: float = Field(
        15.0, gt=0, le=300, description="Seconds between keep-alive comments on GET /v1/alerts/stream when idle."
    )
    log_level: str = Field(
        "WARNING", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="Log level of the flow processes (stderr)."
    )
    fraud_memory_budget_mb: int = Field(
        1_024, ge=64, description="Resident memory a fraud flow process should stay under (benchmark soak check)."
    )
    # --- recommendations (flows/recommend.py, serving/routes/recommendations.py) ---------------
    # Half-lives and windows are event time; capacities bound the flow's memory (docs/recommendations.md).
    rec_shards: int = Field(
        8, ge=1, le=4096, description="Shards per keyed recommendation state (the unit Bytewax spreads over workers)."
    )
    rec_neighbours_half_life_s: float = Field(14 * 86_400.0, gt=0, description="Half-life of a co-visit.")
    rec_neighbours_capacity: int = Field(50, ge=1, description="Neighbours kept per SKU in flow state.")
    rec_neighbours_published: int = Field(15, ge=1, le=500, description="Neighbours written per SKU document.")
    rec_trail_items: int = Field(4, ge=2, le=50, description="Recent SKUs per shopper that pair with a new one.")
    rec_trail_window_s: float = Field(
        1_800.0, gt=0, description="Interactions of different sessions this close in time still pair."
    )
    rec_position_decay: float = Field(0.8, gt=0, le=1, description="Pair weight factor per step back in the trail.")
    rec_trending_half_life_global_s: float = Field(6 * 3_600.0, gt=0, description="Half-life of trending everywhere.")
    rec_trending_half_life_category_s: float = Field(
        12 * 3_600.0, gt=0, description="Half-life of trending in a category."
    )
    rec_trending_half_life_location_s: float = Field(
        24 * 3_600.0, gt=0, description="Half-life of trending at a store or warehouse (fewer, slower signals)."
    )
    rec_trending_half_life_channel_s: float = Field(6 * 3_600.0, gt=0, description="Half-life of trending per channel.")
    rec_trending_capacity: int = Field(300, ge=1, description="SKUs kept per trending scope in flow state.")
    rec_trending_published: int = Field(20, ge=1, le=1000, description="SKUs written per trending document.")
    rec_profile_recent: int = Field(20, ge=1, le=200, description="Recent SKUs kept per shopper profile.")
    rec_profile_half_life_s: float = Field(3 * 86_400.0, gt=0, description="Half-life of a category affinity.")
    rec_profile_ttl_s: float = Field(
        30 * 86_400.0, ge=0, description="Redis time to live of a profile document (0: none); sessions come and go."
    )
    rec_doc_ttl_s: float = Field(
        30 * 86_400.0, ge=0, description="Redis time to live of neighbour and trending documents (0: none)."
    )
    rec_neighbours_write_interval_s: float = Field(
        60.0, ge=0, description="Event-time seconds between rewrites of one SKU's neighbour list (the throttle)."
    )
    rec_trending_write_interval_s: float = Field(
        5.0, ge=0, description="Event-time seconds between rewrites of one trending scope, and of the ranker."
    )
    rec_actor_capacity: int = Field(
        50_000, ge=100, description="Shoppers held in flow state (least recently active leave first)."
    )
    rec_item_capacity: int = Field(50_000, ge=100, description="SKUs with neighbour lists held in flow state.")
    rec_catalog_capacity: int = Field(500_000, ge=100, description="SKUs whose catalog facts the flow holds.")
    rec_feedback_window_s: float = Field(
        1_800.0, gt=0, description="Event-time seconds after an answer is served in which clicks, carts, buys count."
    )
    rec_variants: str = Field(
        "blend:1;ranked:1:ranker=1",
        description="Experiment arms, `name:share[:ranker=0|1,cap=N,<source>=<weight>,...]` joined by `;`.",
    )
    # Parsed, and refused with the reason, where it is used: the API's start (`operators.recs.experiments.
    # parse_variants`). Settings sit above every layer but are imported by all of them, so they import none.
    rec_experiment_salt: str = Field("rec-exp-1", description="Changing it reshuffles shoppers between the arms.")
    rec_ranker_learning_rate: float = Field(0.05, gt=0, le=10, description="SGD step of the online ranker.")
    rec_api_cache_s: float = Field(
        5.0,
        ge=0,
        le=60,
        description="Seconds the API reuses parsed neighbour and trending lists (0: never). The flow rewrites them"
        " at most every rec_neighbours_write_interval_s / rec_trending_write_interval_s; profiles are never cached.",
    )
    rec_served_queue_max: int = Field(
        100_000, ge=100, description="Served answers the API buffers for the broker before dropping (and counting)."
    )
    rec_soak_rss_budget_mb: float = Field(
        1_500.0, gt=0, description="Resident memory the recommend flow must stay under in the benchmark's soak."
    )

    @field_validator("recovery_dir", mode="before")
    @classmethod
    def _empty_recovery_dir_disables(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("fraud_review_threshold", "fraud_block_threshold", mode="before")
    @classmethod
    def _empty_threshold_keeps_the_rules_file(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("kafka_brokers")
    @classmethod
    def _brokers_are_host_ports(cls, value: str) -> str:
        for broker in value.split(","):
            host, _, port = broker.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port…], got {value!r}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_has_known_scheme(cls, value: str) -> str:
        schemes = ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
        if not value.startswith(schemes):
            raise ValueError(f"expected a URL starting with one of {', '.join(schemes)}; got {value!r}")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_a_topic_name_part(cls, value: str) -> str:
        if not all(ch.isalnum() or ch in "._-" for ch in value):
            raise ValueError(f"only letters, digits, '.', '_' and '-' are allowed; got {value!r}")
        return value

    @property
    def broker_list(self) -> list[str]:
        return [b.strip() for b in self.kafka_brokers.split(",")]

    def topic(self, topic: Topic) -> str:
        """The full name of `topic` under the configured prefix."""
        return topic.named(self.topic_prefix)


def settings_or_exit(**overrides: object) -> Settings:
    """Read the settings, or stop with one clear line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as ex:
        lines = []
        for error in ex.errors():
            name = "OMNISTREAM_" + "_".join(str(p) for p in error["loc"]).upper()
            lines.append(f"omnistream: bad configuration: {name}: {error['msg']}")
        raise SystemExit("\n".join(lines)) from None
