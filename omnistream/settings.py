"""Omnistream's configuration: one typed `Settings`, read from `OMNISTREAM_*` variables.

Settings come in groups, one per component, named after the first word of
their variables: `OMNISTREAM_KAFKA_FETCH_WAIT_MS` is `settings.kafka.fetch_wait_ms`,
`OMNISTREAM_FRAUD_SHARDS` is `settings.fraud.shards`. Settings that belong to no
one component (the Bytewax topology, snapshots, the inventory windows, the log
level) stay at the top: `OMNISTREAM_WORKERS` is `settings.workers`.

Code (tests, benchmarks, the CLI) may still name a setting flat, as its variable
without the prefix: `Settings(fraud_shards=4)` and
`settings.model_copy(update={"flow_stop_at_end": True})` put the value in its group.

Defaults run the local stack (`omnistream up`). A bad value stops start-up
with one line naming the variable (`settings_or_exit`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from events.topics import Topic

Port = Annotated[int, Field(ge=1, le=65535)]


class _Group(BaseModel):
    """A component's settings: frozen like `Settings`; unknown variables of the group are ignored, as before."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class KafkaSettings(_Group):
    """The Kafka cluster every flow, the simulator and the API's feedback publisher talk to."""

    brokers: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port.")
    batch_size: int = Field(5000, ge=1, le=100_000, description="Messages per Kafka poll in the flows.")
    fetch_wait_ms: int = Field(
        10,
        ge=1,
        le=10_000,
        description="How long a flow's Kafka fetch that finds nothing waits at the broker (ms), in the flows whose "
        "answers are awaited at once (inventory, loyalty). 10 suits the local broker, which does not answer a "
        "waiting fetch when data arrives; Apache Kafka does, so 100-500 costs it no latency and fewer idle requests.",
    )
    relaxed_fetch_wait_ms: int = Field(
        100,
        ge=1,
        le=10_000,
        description="The same for the flows whose targets are a second or more (recommend, fraud, merchandising, "
        "customers, attribution, demand): fewer idle fetches for the broker to answer.",
    )

    @field_validator("brokers")
    @classmethod
    def _brokers_are_host_ports(cls, value: str) -> str:
        for broker in value.split(","):
            host, _, port = broker.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port…], got {value!r}")
        return value

    # --- authentication and TLS, passed to every producer, consumer and admin client (docs/security.md) ---
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="librdkafka security.protocol of every Kafka client."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism, with a SASL_* protocol."
    )
    sasl_username: str = Field("", description="SASL user, with a SASL_* protocol.")
    sasl_password: str = Field("", repr=False, description="SASL password, with a SASL_* protocol.")
    ssl_ca_file: Path | None = Field(None, description="CA bundle (PEM) of the brokers' certificates (SSL, SASL_SSL).")
    ssl_cert_file: Path | None = Field(None, description="Client certificate (PEM) when the brokers ask for one.")
    ssl_key_file: Path | None = Field(None, description="The client certificate's private key (PEM).")

    @field_validator("ssl_ca_file", "ssl_cert_file", "ssl_key_file", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    def security_config(self) -> dict[str, str]:
        """The librdkafka settings for authentication and TLS (empty for the default PLAINTEXT).

        >>> KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="omni",
        ...               sasl_password="pw", ssl_ca_file="/ca.pem").security_config()["sasl.mechanism"]
        'SCRAM-SHA-512'
        >>> KafkaSettings().security_config()
        {}
        """
        if self.security_protocol == "PLAINTEXT":
            return {}
        config: dict[str, str] = {"security.protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL_"):
            config |= {"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.sasl_username,
                       "sasl.password": self.sasl_password}  # fmt: skip
        files = {"ssl.ca.location": self.ssl_ca_file, "ssl.certificate.location": self.ssl_cert_file,
                 "ssl.key.location": self.ssl_key_file}  # fmt: skip
        config |= {name: str(path) for name, path in files.items() if path is not None}
        return config

    def client_config(self) -> dict[str, str]:
        """`bootstrap.servers` and the security settings: the base of every Kafka client's configuration."""
        return {"bootstrap.servers": self.brokers, **self.security_config()}


class TopicSettings(_Group):
    """Names and size of the topics Omnistream creates (`events.topics`)."""

    prefix: str = Field("omni.", description="Prefix of every topic name.")
    partitions: int = Field(4, ge=1, le=1024, description="Partitions per topic when Omnistream creates topics.")

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_topic_name_part(cls, value: str) -> str:
        if not all(ch.isalnum() or ch in "._-" for ch in value):
            raise ValueError(f"only letters, digits, '.', '_' and '-' are allowed; got {value!r}")
        return value

    def __call__(self, topic: Topic) -> str:
        """The full name of `topic` under the prefix: `settings.topic(Topic.POS)` reads as it did before groups."""
        return topic.named(self.prefix)


class RedisSettings(_Group):
    """The Redis that holds live state: flows write it, the API reads it."""

    url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="redis://, rediss://, unix://, redis+sentinel://host:port/service or redis+cluster://host:port.",
    )

    @field_validator("url")
    @classmethod
    def _redis_url_has_known_scheme(cls, value: str) -> str:
        schemes = ("redis://", "rediss://", "unix://", "redis+sentinel://", "redis+cluster://")
        if not value.startswith(schemes):
            raise ValueError(f"expected a URL starting with one of {', '.join(schemes)}; got {value!r}")
        return value

    # --- credentials and TLS (appended; docs/security.md) -----------------------------------------
    username: str = Field("", description="Redis ACL user (empty: the URL's, or `default`).")
    password: str = Field("", repr=False, description="Redis password of the ACL user (empty: the URL's, if any).")
    tls_ca_file: Path | None = Field(
        None, description="CA bundle (PEM) that signs Redis's certificate; with a rediss:// URL."
    )
    tls_cert_file: Path | None = Field(None, description="Client certificate (PEM) when Redis asks for one.")
    tls_key_file: Path | None = Field(None, description="The client certificate's private key (PEM).")

    @field_validator("tls_ca_file", "tls_cert_file", "tls_key_file", mode="before")
    @classmethod
    def _empty_path_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @model_validator(mode="after")
    def _credentials_and_tls_in_the_url(self) -> RedisSettings:
        """Fold the user, password and TLS files into `url`, which every Redis client is made from.

        Every flow, tool and the API connect with `state.connection.connect(settings.redis.url)`;
        redis-py reads `ssl_ca_certs`, `ssl_certfile` and `ssl_keyfile` from the URL's query. Values
        the URL already carries win, so a URL passed on to a child process is not changed twice.
        """
        object.__setattr__(self, "url", redis_url_with(self.url, self.username, self.password, {
            "ssl_ca_certs": self.tls_ca_file, "ssl_certfile": self.tls_cert_file, "ssl_keyfile": self.tls_key_file,
        }))  # fmt: skip
        return self

    @property
    def display_url(self) -> str:
        """`url` with any password replaced by `***`, for printing."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))


def redis_url_with(url: str, username: str, password: str, query: Mapping[str, object]) -> str:
    """`url` with `username`/`password` (when it has none) and the non-empty `query` values it lacks.

    >>> redis_url_with("rediss://h:6380/0", "omni", "p@ss", {"ssl_ca_certs": "/ca.pem", "ssl_keyfile": None})
    'rediss://omni:p%40ss@h:6380/0?ssl_ca_certs=%2Fca.pem'
    >>> redis_url_with("redis://u:x@h:6379/0?ssl_ca_certs=a", "", "y", {"ssl_ca_certs": "b"})
    'redis://u:x@h:6379/0?ssl_ca_certs=a'
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if password and "@" not in netloc:
        netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{netloc}"
    elif username and "@" not in netloc:
        netloc = f"{quote(username, safe='')}@{netloc}"
    present = dict(parse_qsl(parts.query, keep_blank_values=True))
    added = {name: str(value) for name, value in query.items() if value not in (None, "") and name not in present}
    new_query = urlencode({**present, **added}) if added else parts.query
    return urlunsplit(parts._replace(netloc=netloc, query=new_query))


class ApiSettings(_Group):
    """The HTTP API (`omnistream serve`, `serving/`)."""

    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: Port = Field(8000, description="Port the API listens on.")
    redis_timeout_ms: int = Field(
        80, ge=5, le=10_000, description="Redis timeout of the API; past it a request gets 503."
    )
    sse_keepalive_s: float = Field(
        15.0, gt=0, le=300, description="Seconds between keep-alive comments on GET /v1/alerts/stream when idle."
    )


class RecoverySettings(_Group):
    """Bytewax recovery partitions: where a flow's snapshots live, so a restart resumes."""

    dir: Path | None = Field(
        Path(".omnistream/recovery"), description="Bytewax recovery partitions; empty disables recovery."
    )
    partitions: int = Field(1, ge=1, le=64, description="Recovery partitions (SQLite files).")

    @field_validator("dir", mode="before")
    @classmethod
    def _empty_recovery_dir_disables(cls, value: object) -> object:
        return None if value in ("", None) else value


class FlowSettings(_Group):
    """How a flow process runs: its metrics port and whether it stops at the end of its input."""

    metrics_port: int = Field(
        9108,
        ge=0,
        le=65535,
        description="Base Prometheus port of the flows: base + 16 x the flow's position in FLOWS + the process index"
        " (inventory 9108, recommend 9124, fraud 9140, merchandising 9156); 0 disables.",
    )
    stop_at_end: bool = Field(
        False, description="Stop a flow once all input present at start is consumed (replays, tests, benchmarks)."
    )


class SimSettings(_Group):
    """The simulator's workload."""

    seed: int = Field(7, description="Seed of the simulator.")


class FraudSettings(_Group):
    """The fraud flow (`flows/fraud.py`) and the scores the API serves."""

    rules_path: Path = Field(
        Path("deploy/fraud/rules.toml"), description="Versioned fraud rules file (TOML), reloaded live when it changes."
    )
    rules_check_s: float = Field(
        2.0, gt=0, le=3600, description="Wall seconds between checks of the rules file's modification time."
    )
    score_ttl_s: float = Field(
        7 * 86_400.0, gt=0, description="How long a payment's score stays readable at GET /v1/scores/{id}."
    )
    review_threshold: float | None = Field(
        None, ge=0, le=1, description="Overrides the rules file's review threshold (score at or above: review)."
    )
    block_threshold: float | None = Field(
        None, ge=0, le=1, description="Overrides the rules file's block threshold (score at or above: block)."
    )
    shards: int = Field(
        4,
        ge=1,
        le=1024,
        description="Keyed shards per fraud stage (cards, shoppers, stores; scorers: scorer_shards); a label meets "
        "its payment's features on crc32(payment id) % shards.",
    )
    scorer_shards: int = Field(
        1,
        ge=1,
        le=1024,
        description="Keyed shards of the scorer stage, each with a supervised model of its own that learns only "
        "the labels of its payments: one (the default) learns from every label; more spread scoring over workers.",
    )
    review_budget_per_day: float = Field(
        100.0,
        gt=0,
        description="Payments investigators review a day: the review threshold is the score that many payments "
        "exceeded a day over the last 7 days of event time (until a day has passed: the rules file's).",
    )
    block_precision: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Share of blocked payments that must be fraud: the block threshold is the lowest score at "
        "which received labels were fraud that often (until 20 labelled payments reach it: the rules file's).",
    )
    max_entities: int = Field(
        50_000, ge=100, description="Cards, shoppers or stores kept per shard at most (least recently active go)."
    )
    dedup_ids: int = Field(
        200_000, ge=1000, description="Recent event ids kept per card shard to drop producer retries."
    )
    scorer_mode: Literal["full", "rules_only", "anomaly_only"] = Field(
        "full",
        description="What the score is: the blend (`full`), or the rules or the anomaly model alone (a fallback, "
        "and the quality harness's comparison).",
    )
    label_horizon_s: float = Field(
        120 * 86_400.0,
        ge=60,
        description="Event time a payment's scoring inputs wait for its fraud_label (the chargeback window).",
    )
    label_maturity_s: float | None = Field(
        None,
        ge=60,
        description="Event time after which an unlabelled payment is learned as genuine, never earlier; unset: "
        "the horizon.",
    )
    label_max_pending: int = Field(
        2_500_000,
        ge=1000,
        description="Payments awaiting a label kept per scorer shard at most (the oldest go first, unlearned, a run "
        "of at most 262,144 at a time).",
    )
    alert_quiet_s: float = Field(
        1_800.0, ge=1, description="Event time without suspicious payments before a fraud alert resolves."
    )
    learn_chunk_s: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="Event time the scorer's models learn in one step (a chunk, closed by the next item past it): "
        "a payment is scored by the models as of its chunk's start, so scores are a function of the data. Divide "
        "a day by it.",
    )
    order_idle_s: float = Field(
        0.25,
        gt=0,
        le=60,
        description="Wall seconds an input partition may deliver nothing (while others deliver) before payments "
        "stop waiting for it to pass their event time (the fraud flow hands payments on in event-time order).",
    )
    order_quiet_s: float = Field(
        5.0, gt=0, le=600, description="Wall seconds the whole input may pause before payments held for order go."
    )
    order_idle_batches: int = Field(
        4, ge=1, le=1000, description="Batches of other partitions that must also have come before one counts as idle."
    )
    memory_budget_mb: int = Field(
        1_024, ge=64, description="Resident memory a fraud flow process should stay under (benchmark soak check)."
    )

    @field_validator("review_threshold", "block_threshold", "label_maturity_s", mode="before")
    @classmethod
    def _empty_threshold_keeps_the_rules_file(cls, value: object) -> object:
        return None if value in ("", None) else value

    @model_validator(mode="after")
    def _maturity_within_the_horizon(self) -> FraudSettings:
        if self.label_maturity_s is not None and self.label_maturity_s > self.label_horizon_s:
            raise ValueError("label_maturity_s must not be past label_horizon_s (payments are forgotten there)")
        return self


class OpsSettings(_Group):
    """Operational anomaly checks of the fraud flow (silent stores and registers, rates against baseline)."""

    silence_store_s: float = Field(
        300.0, ge=1, description="Event time a store may go without a sale (while others sell) before an alert."
    )
    silence_register_s: float = Field(
        900.0, ge=1, description="Event time an active register may stay silent before an alert."
    )
    tick_s: float = Field(
        60.0, ge=1, description="Event-time spacing of the operational checks (silence, rate against baseline)."
    )


class RecSettings(_Group):
    """Recommendations (`flows/recommend.py`, `serving/routes/recommendations.py`).

    Half-lives and windows are event time; capacities bound the flow's memory (docs/recommendations.md)."""

    shards: int = Field(
        8, ge=1, le=4096, description="Shards per keyed recommendation state (the unit Bytewax spreads over workers)."
    )
    neighbours_half_life_s: float = Field(14 * 86_400.0, gt=0, description="Half-life of a co-visit.")
    neighbours_capacity: int = Field(50, ge=1, description="Neighbours kept per SKU in flow state.")
    neighbours_published: int = Field(15, ge=1, le=500, description="Neighbours written per SKU document.")
    trail_items: int = Field(4, ge=2, le=50, description="Recent SKUs per shopper that pair with a new one.")
    trail_window_s: float = Field(
        1_800.0, gt=0, description="Interactions of different sessions this close in time still pair."
    )
    position_decay: float = Field(0.8, gt=0, le=1, description="Pair weight factor per step back in the trail.")
    trending_half_life_global_s: float = Field(6 * 3_600.0, gt=0, description="Half-life of trending everywhere.")
    trending_half_life_category_s: float = Field(12 * 3_600.0, gt=0, description="Half-life of trending in a category.")
    trending_half_life_location_s: float = Field(
        24 * 3_600.0, gt=0, description="Half-life of trending at a store or warehouse (fewer, slower signals)."
    )
    trending_half_life_channel_s: float = Field(6 * 3_600.0, gt=0, description="Half-life of trending per channel.")
    trending_capacity: int = Field(300, ge=1, description="SKUs kept per trending scope in flow state.")
    trending_published: int = Field(20, ge=1, le=1000, description="SKUs written per trending document.")
    profile_recent: int = Field(20, ge=1, le=200, description="Recent SKUs kept per shopper profile.")
    profile_half_life_s: float = Field(3 * 86_400.0, gt=0, description="Half-life of a category affinity.")
    profile_ttl_s: float = Field(
        30 * 86_400.0, ge=0, description="Redis time to live of a profile document (0: none); sessions come and go."
    )
    doc_ttl_s: float = Field(
        30 * 86_400.0, ge=0, description="Redis time to live of neighbour and trending documents (0: none)."
    )
    neighbours_write_interval_s: float = Field(
        60.0, ge=0, description="Event-time seconds between rewrites of one SKU's neighbour list (the throttle)."
    )
    trending_write_interval_s: float = Field(
        5.0, ge=0, description="Event-time seconds between rewrites of one trending scope, and of the ranker."
    )
    actor_capacity: int = Field(
        50_000, ge=100, description="Shoppers held in flow state (least recently active leave first)."
    )
    item_capacity: int = Field(50_000, ge=100, description="SKUs with neighbour lists held in flow state.")
    knn_sessions: int = Field(
        0,
        ge=0,
        description="Shoppers held by the session-kNN index (0, the default: no session-kNN lists; 100000 gives the"
        " measured quality gain at about half the flow's clickstream events per CPU second,"
        " docs/recommendations.md).",
    )
    knn_session_items: int = Field(10, ge=1, le=100, description="Distinct recent SKUs per shopper in the kNN index.")
    knn_sessions_per_sku: int = Field(
        50, ge=1, le=1000, description="Most recent shoppers per SKU in the kNN index: the candidate neighbours."
    )
    knn_neighbours: int = Field(100, ge=1, le=1000, description="Most similar shoppers that vote in a kNN list.")
    knn_published: int = Field(50, ge=1, le=500, description="SKUs written per shopper's session-kNN document.")
    knn_replicas: int = Field(
        1,
        ge=1,
        le=64,
        description="Copies of the session-kNN index, each listing its share of the shoppers: the similar step"
        " spread over that many workers (each copy learns every click and holds the whole index).",
    )
    catalog_capacity: int = Field(500_000, ge=100, description="SKUs whose catalog facts the flow holds.")
    feedback_window_s: float = Field(
        1_800.0, gt=0, description="Event-time seconds after an answer is served in which clicks, carts, buys count."
    )
    variants: str = Field(
        "blend:1;ranked:1:ranker=1",
        description="Experiment arms, `name:share[:ranker=0|1,cap=N,<source>=<weight>,...]` joined by `;`.",
    )
    # Parsed, and refused with the reason, where it is used: the API's start (`operators.recs.experiments.
    # parse_variants`). Settings sit above every layer but are imported by all of them, so they import none.
    experiment_salt: str = Field("rec-exp-1", description="Changing it reshuffles shoppers between the arms.")
    ranker_learning_rate: float = Field(0.05, gt=0, le=10, description="SGD step of the online ranker.")
    api_cache_s: float = Field(
        5.0,
        ge=0,
        le=60,
        description="Seconds the API reuses parsed neighbour and trending lists (0: never). The flow rewrites them"
        " at most every rec_neighbours_write_interval_s / rec_trending_write_interval_s; profiles are never cached.",
    )
    served_queue_max: int = Field(
        100_000, ge=100, description="Served answers the API buffers for the broker before dropping (and counting)."
    )
    soak_rss_budget_mb: float = Field(
        1_500.0, gt=0, description="Resident memory the recommend flow must stay under in the benchmark's soak."
    )


class MerchSettings(_Group):
    """Merchandising suggestions (`flows/merchandising.py`): velocity, transfers, markdowns (docs/merchandising.md).

    Durations are event time; money is in the catalog's currency."""

    shards: int = Field(16, ge=1, le=4096, description="Shards of SKU state in the merchandising flow.")
    half_life_s: float = Field(7 * 86_400.0, gt=0, description="Half-life of a unit of demand in velocity.")
    basket_cap: float = Field(
        3.0, gt=0, description="One demand event counts at most this many typical baskets (big-basket robustness)."
    )
    review_interval_s: float = Field(
        3_600.0, gt=0, description="Event time between reviews of every SKU (quiet SKUs' markdowns, decayed demand)."
    )
    review_step_s: float = Field(
        60.0, gt=0, description="Event time between reviews of the SKUs that changed (never at batch boundaries)."
    )
    lead_time_days: float = Field(2.0, ge=0, description="Days a transfer takes to arrive.")
    horizon_days: float = Field(14.0, gt=0, description="Days of demand a transfer plan looks ahead.")
    trigger_cover_days: float = Field(5.0, ge=0, description="A location below this many days of cover receives.")
    target_cover_days: float = Field(10.0, gt=0, description="Days of cover a transfer brings a receiver up to.")
    keep_days: float = Field(2.0, ge=0, description="Days of cover a donor keeps beyond the target.")
    min_keep_units: int = Field(
        2, ge=0, description="Units a donor never sends (a store's last units stay for walk-in shoppers)."
    )
    min_lot: int = Field(1, ge=1, description="Transfers are whole multiples of this many units.")
    transfer_cost: float = Field(5.0, ge=0, description="Fixed cost of one transfer.")
    transfer_cost_per_unit: float = Field(0.5, ge=0, description="Cost per unit transferred.")
    margin_rate: float = Field(0.4, gt=0, le=1, description="Share of the price a saved sale earns.")
    transit_timeout_s: float = Field(
        14 * 86_400.0, gt=0, description="A transfer not seen arriving within this is no longer counted inbound."
    )
    season_end: AwareDatetime | None = Field(
        None, description="RFC 3339 end of the selling season; unset, no markdowns are suggested."
    )
    markdown_floor_share: float = Field(0.3, ge=0, le=1, description="Lowest price, as a share of the list price.")
    markdown_max_discount: float = Field(0.5, ge=0, le=1, description="Deepest markdown off the list price.")
    markdown_step: float = Field(0.1, gt=0, le=1, description="Markdown ladder step, as a share of the list price.")
    markdown_min_cover_days: float = Field(
        21.0, ge=0, description="No markdown for a SKU with fewer days of cover (it is about to run out)."
    )
    markdown_min_age_days: float = Field(14.0, ge=0, description="No markdown for stock younger than this.")
    markdown_elasticity: float = Field(2.0, gt=0, description="Assumed price elasticity of demand.")
    markdown_max_change: float = Field(
        0.2, gt=0, le=1, description="Deepest cut in one markdown suggestion, as a share of the list price."
    )
    markdown_cadence_days: float = Field(
        7.0, ge=0, description="No new markdown within this many days of the SKU's last price change."
    )

    @field_validator("season_end", mode="before")
    @classmethod
    def _empty_season_end_is_unset(cls, value: object) -> object:
        return None if value in ("", None) else value


class CustomersSettings(_Group):
    """The customers flow (`flows/customers.py`): RFM, lifecycle rules, triggers (docs/customers.md)."""

    shards: int = Field(8, ge=1, le=4096, description="Keyed shards of SKUs and of the gate (recovery layout).")
    buckets: int = Field(
        4096,
        ge=1,
        le=1 << 20,
        description="Keyed buckets of customers (recovery layout): snapshots write those touched.",
    )
    windows_days: str = Field(
        "90,365", pattern=r"^\d+(,\d+)*$", description="RFM windows in days (decayed sums), shortest first."
    )
    new_days: float = Field(30.0, gt=0, description="Lifecycle: `new` for this long after the first purchase.")
    at_risk_days: float = Field(60.0, gt=0, description="Lifecycle: `at_risk` after this long without a purchase.")
    lapsed_days: float = Field(180.0, gt=0, description="Lifecycle: `lapsed` after this long without a purchase.")
    won_back_days: float = Field(30.0, gt=0, description="Lifecycle: `won_back` for this long after a lapse ends.")
    vip_spend: float = Field(1000.0, gt=0, description="Spend over the longest window that makes a customer VIP.")
    cart_window_s: float = Field(1800.0, gt=0, description="`cart_abandoned`: no purchase of the item this long.")
    payment_window_s: float = Field(1800.0, gt=0, description="`payment_failed_recovery`: no purchase this long.")
    watch_window_s: float = Field(7 * 86_400.0, gt=0, description="`back_in_stock`: how long a view waits.")
    cooldown_s: float = Field(86_400.0, ge=0, description="At most one trigger of a kind per customer this often.")
    lateness_s: float = Field(
        0.25, ge=0, description="Event-time lateness the watermark allows: timers fire this long after they are due."
    )
    idle_partition_s: float = Field(
        600.0, gt=0, description="A partition this far behind the newest one no longer holds the watermark back."
    )
    consent_required: bool = Field(
        False, description="True: only customers with a `consent` event saying yes get triggers (opt-in)."
    )
    max_future_s: float = Field(
        3_600.0, gt=0, description="Events dated further ahead of the wall clock are refused (dead letters)."
    )
    poll_pace_s: float = Field(
        0.02,
        ge=0,
        le=1.0,
        description="Caught-up partitions are polled together on a beat this long (0: each at once, as other flows).",
    )

    @model_validator(mode="after")
    def _lifecycle_in_order(self) -> CustomersSettings:
        if not self.at_risk_days < self.lapsed_days:
            raise ValueError("at_risk_days must be below lapsed_days")
        return self

    @property
    def windows_s(self) -> tuple[float, ...]:
        return tuple(float(days) * 86_400.0 for days in self.windows_days.split(","))


class LoyaltySettings(_Group):
    """The loyalty ledger (`flows/loyalty.py`) and the loyalty API (docs/loyalty.md). Windows are event time."""

    rules_path: Path = Field(
        Path("deploy/loyalty/rules.toml"), description="Earn rules (TOML): points per unit per channel, multipliers."
    )
    shards: int = Field(
        8, ge=1, le=4096, description="Keyed shards per loyalty stage (accounts, transactions, members)."
    )
    return_window_s: float = Field(
        30 * 86_400.0, ge=0, description="Points stay pending this long after a purchase (returns take them back)."
    )
    expiry_s: float = Field(365 * 86_400.0, gt=0, description="Spendable points expire this long after maturing.")
    tier_window_s: float = Field(365 * 86_400.0, gt=0, description="Rolling window of spend that sets the tier.")
    link_lookback_s: float = Field(
        30 * 86_400.0, ge=0, description="An online order placed this long before its account's link still earns."
    )
    txn_retention_s: float = Field(
        120 * 86_400.0, ge=3_600.0, description="A transaction is kept this long for its returns, voids and cancels."
    )
    tick_s: float = Field(60.0, gt=0, description="Event-time spacing of the clock that matures and expires points.")
    lateness_s: float = Field(
        3_600.0, ge=0, description="The ledger's clock runs this far behind the newest event time (late returns)."
    )
    entries_kept: int = Field(20, ge=1, le=500, description="Recent ledger entries per member in its document.")
    redemption_ttl_s: float = Field(
        30 * 86_400.0, gt=0, description="How long a redemption's decision stays readable (and its Idempotency-Key)."
    )
    redemption_wait_ms: int = Field(
        2_000, ge=0, le=30_000, description="How long POST /v1/loyalty/.../redemptions waits for the decision."
    )


class AttributionSettings(_Group):
    """Campaign attribution (`flows/attribution.py`, `GET /v1/attribution`, docs/attribution.md). Event time."""

    shards: int = Field(8, ge=1, le=4096, description="Keyed shards per attribution stage (actors, members).")
    lookback_s: float = Field(
        30 * 86_400.0,
        gt=0,
        description="Touchpoints this long before a conversion count; older ones leave unconverted.",
    )
    half_life_s: float = Field(7 * 86_400.0, gt=0, description="Half-life of a touchpoint's weight (time decay).")
    tick_s: float = Field(60.0, gt=0, description="Event-time spacing of the clock that closes abandoned journeys.")
    max_paths: int = Field(
        5_000, ge=10, description="Distinct paths kept per day and dimension; more are counted as '(other paths)'."
    )
    api_cache_s: float = Field(
        2.0, ge=0, le=60, description="Seconds the API reuses a computed attribution answer (0: never)."
    )
    max_days: int = Field(92, ge=1, le=400, description="Longest from..to range GET /v1/attribution accepts (days).")


class ClusterSettings(_Group):
    """A flow process that is one member of a Bytewax cluster spread over hosts (a Kubernetes StatefulSet).

    Locally, `flows.launcher` starts every process of a cluster itself and none of this is used.
    Set `address_template` and each process finds its id and its peers by itself
    (`flows.cluster_member`); `processes` is the cluster's size.
    """

    address_template: str = Field(
        "",
        description="Address of process {i} (host:port), e.g. inventory-flow-{i}.inventory-flow:2101; empty: not a"
        " member of a cluster spread over hosts.",
    )
    process_id: int | None = Field(
        None, ge=0, lt=64, description="This process's id; unset: the ordinal ending the host name (inventory-flow-2)."
    )
    generation: str = Field(
        "",
        pattern="^[A-Za-z0-9_.-]*$",
        description="Lineage of the cluster's flow state, the same on every member; change it whenever the"
        " recovery volumes are recreated.",
    )
    rendezvous_timeout_s: float = Field(
        600.0,
        gt=0,
        le=86_400,
        description="Seconds a starting member waits for every member's recovery rows in Redis (to agree on the "
        "epoch the cluster resumes from); past it, it starts without deleting what a killed run left.",
    )

    @field_validator("process_id", mode="before")
    @classmethod
    def _empty_process_id_reads_the_host_name(cls, value: object) -> object:
        return None if value in ("", None) else value


class AuthSettings(_Group):
    """Who may call the API (`serving/auth/`): API keys with roles and a per-key rate limit."""

    enabled: bool = Field(
        True,
        description="Require an API key on every route but the console page, probes, docs and /metrics. false is a "
        "development mode (`omnistream serve --no-auth`), announced loudly at start.",
    )
    key_cache_s: float = Field(
        0.5, ge=0, le=1.0, description="Seconds an API process trusts a key lookup; a revoked key stops within it."
    )
    rate_per_s: float = Field(
        1_000.0, gt=0, description="Requests a second one key may make to one API process (unless the key has its own)."
    )
    burst_s: float = Field(2.0, gt=0, le=60, description="Seconds of the rate a key may spend in one burst.")


class OrdersSettings(_Group):
    """Online orders as the inventory flow keeps them (`GET /v1/orders/{order_id}`)."""

    doc_ttl_s: float = Field(
        30 * 86_400.0, ge=0, description="Redis time to live of an order's document after its last change (0: none)."
    )


class ReservationsSettings(_Group):
    """Checkout holds (`POST /v1/reservations`): asked through the API, decided by the inventory flow."""

    hold_s: float = Field(900.0, gt=0, le=7 * 86_400, description="How long a hold lasts when the request names none.")
    max_hold_s: float = Field(
        86_400.0, gt=0, le=7 * 86_400, description="The longest hold a request may ask for (event time)."
    )
    doc_ttl_s: float = Field(
        7 * 86_400.0, gt=0, description="Redis time to live of a reservation's answer after its last change."
    )
    idempotency_ttl_s: float = Field(
        86_400.0, gt=0, description="How long a request's Idempotency-Key keeps its first answer for retries."
    )
    publish_timeout_s: float = Field(
        5.0, gt=0, le=60, description="How long the API waits for the broker to take a reservation before a 503."
    )


class FulfilmentSettings(_Group):
    """The cost model of `GET /v1/fulfilment/options` (`operators.fulfilment`)."""

    ship_costs: str = Field(
        "",
        description="Shipping cost of one parcel per location and region, `LOCATION:REGION=COST,...`; the regions "
        "named here are the `ship_to` values the endpoint takes (any, when empty).",
    )
    default_ship_cost: float = Field(8.0, ge=0, description="Shipping cost of a location and region the table lacks.")
    store_handling_cost: float = Field(1.5, ge=0, description="Cost of picking and packing an order at a store.")
    warehouse_handling_cost: float = Field(0.5, ge=0, description="Cost of picking and packing at a warehouse.")
    split_penalty: float = Field(5.0, ge=0, description="Added cost of each source beyond the first (a split).")
    store_safety_stock: int = Field(
        2, ge=0, description="Units a store keeps for walk-in shoppers: never assigned to online orders."
    )
    warehouse_prefixes: str = Field("WH-", description="Location id prefixes of warehouses (comma-separated).")
    max_sources: int = Field(3, ge=1, le=10, description="Most sources one order may be split over.")


class DemandSettings(_Group):
    """Demand forecasts (`flows/demand.py`, `serving/routes/forecasts.py`, docs/demand.md)."""

    locations: str = Field(
        "STORE-*=America/New_York,US,3,0.95;WH-*=America/New_York,US,7,0.95",
        description="Where each location is, `id_or_glob=Time/Zone,CC[-SUB][,lead_days[,service_level]]` joined by"
        " `;` (first match wins): its local day, holidays, supplier lead time and service level. Events at a location"
        " no rule names are dead-lettered (`refused`).",
    )
    shards: int = Field(
        8,
        ge=1,
        le=4096,
        description="Keyed shards of the demand flow's days, models and reorders steps: the units workers share; "
        "part of the recovery layout, so chosen once. On one worker fewer run faster (an order's lines in several "
        "shards are taken by each: 1 shard ~15% more events per CPU second than 4).",
    )
    lateness_s: float = Field(
        3_600.0, ge=0, description="Event time past a local midnight before that day closes and forecasts refresh."
    )
    alpha: float = Field(0.03, gt=0, le=1, description="Smoothing of each SKU's rolling 7-day demand per day close.")
    interval: float = Field(0.8, gt=0, lt=1, description="Share of SKU-days the forecast intervals aim to cover.")
    horizon_days: int = Field(
        28, ge=7, le=92, description="Days forecast at each close; weather further ahead than this is refused."
    )
    rising_kept: int = Field(100, ge=1, le=1000, description="Rising items kept per location.")
    rising_alpha: float = Field(
        0.03,
        gt=0,
        le=1,
        description="Smoothing of the recent 7-day demand that rising items compare with 28 days (at `alpha`: the"
        " point forecast's own; 0.25 flags a take-off within days but ranked worse on the real log).",
    )
    idle_days: int = Field(112, ge=28, description="Days without demand after which a SKU's series is dropped.")
    global_model: bool = Field(
        False,
        description="Correct the smoothing's forecasts with a global online model (river) over lags, weekday, holidays"
        " and weather, learnt across each location's SKUs (docs/demand.md: measured, off as it did not pay).",
    )
    global_learning_rate: float = Field(
        0.005, gt=0, le=1, description="SGD step of the global model (`OMNISTREAM_DEMAND_GLOBAL_MODEL`)."
    )
    reorder_review_days: int = Field(
        7, ge=0, le=92, description="Reorder review period: a reorder covers the lead time plus these days."
    )
    reorder_change_share: float = Field(
        0.25, ge=0, le=10, description="A reorder is re-published when its quantity moves by more than this share."
    )


class Settings(BaseSettings):
    """Every knob of Omnistream, grouped per component, with the environment variable that sets it.

    A group's variables are `OMNISTREAM_<GROUP>_<FIELD>` (pydantic-settings splits the
    name once after the group, `env_nested_max_split=1`), so every variable kept its
    name when the flat settings were grouped. No top-level field may start with a
    group's name and `_`, or its variable would be read into that group as well.
    """

    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="ignore",
        frozen=True,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topic: TopicSettings = Field(default_factory=TopicSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    flow: FlowSettings = Field(default_factory=FlowSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    fraud: FraudSettings = Field(default_factory=FraudSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    rec: RecSettings = Field(default_factory=RecSettings)
    merch: MerchSettings = Field(default_factory=MerchSettings)
    customers: CustomersSettings = Field(default_factory=CustomersSettings)
    loyalty: LoyaltySettings = Field(default_factory=LoyaltySettings)
    attribution: AttributionSettings = Field(default_factory=AttributionSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    orders: OrdersSettings = Field(default_factory=OrdersSettings)
    reservations: ReservationsSettings = Field(default_factory=ReservationsSettings)
    fulfilment: FulfilmentSettings = Field(default_factory=FulfilmentSettings)
    demand: DemandSettings = Field(default_factory=DemandSettings)

    # --- no one component's: every flow's topology and snapshots, the inventory flow's windows, logging.
    # Their variables name no component, and pydantic-settings reads a group's fields only as
    # OMNISTREAM_<GROUP>_<FIELD>: a group here would need a settings source of its own and a table
    # mapping error locations back to variable names, for no gain to anyone setting them.
    snapshot_interval_s: float = Field(
        30.0, gt=0, description="Seconds between recovery snapshots (epoch); at most this much input is replayed."
    )
    backup_interval_s: float = Field(0.0, ge=0, description="How long old snapshots are kept for lagging workers.")
    workers: int = Field(1, ge=1, le=64, description="Bytewax worker threads per flow process.")
    processes: int = Field(1, ge=1, le=64, description="Bytewax processes per flow (a loopback cluster locally).")
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
    max_future_s: float = Field(
        3_600.0,
        gt=0,
        description="Every flow refuses events dated further ahead of the wall clock (dead letters where it owns the "
        "topic's): a till with a wrong clock would lapse every hold of a SKU, presume every pending payment genuine.",
    )
    log_level: str = Field(
        "WARNING", pattern="^(DEBUG|INFO|WARNING|ERROR)$", description="Log level of the flow processes (stderr)."
    )

    @model_validator(mode="before")
    @classmethod
    def _flat_names_join_their_group(cls, data: Any) -> Any:
        """`fraud_shards=4` (a variable's name without the prefix) becomes `fraud={"shards": 4}`."""
        return _fold_flat_names(data) if isinstance(data, Mapping) else data

    @classmethod
    def flat_fields(cls) -> dict[str, FieldInfo]:
        """Every setting by its flat name, its variable's name without the prefix: `fraud_shards`, `workers`."""
        return {name: place.info for name, place in _FLAT.items()}

    def flat_values(self) -> dict[str, Any]:
        """Every setting's value by its flat name (`flat_fields`): what a child process's variables carry."""
        return {
            name: getattr(self if place.group is None else getattr(self, place.group), place.field)
            for name, place in _FLAT.items()
        }

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with `update` applied, unvalidated like pydantic's; flat names go into their group.

        `update` takes flat names (`{"flow_stop_at_end": True}`), whole groups, or a
        group's fields as a mapping (`{"flow": {"stop_at_end": True}}`, the rest kept).
        An unknown name raises instead of being dropped: a misspelt override
        would otherwise be lost in silence.
        """
        if not update:
            return super().model_copy(deep=deep)
        resolved: dict[str, Any] = {}
        for name, value in _fold_flat_names(update).items():
            if name not in type(self).model_fields:
                raise ValueError(f"Settings has no setting {name!r}")
            if name in _GROUPS and isinstance(value, Mapping):
                group = getattr(self, name)
                unknown = sorted(set(value) - set(type(group).model_fields))
                if unknown:
                    raise ValueError(f"settings.{name} has no setting {', '.join(unknown)}")
                value = group.model_copy(update=value)
            resolved[name] = value
        return super().model_copy(update=resolved, deep=deep)

    @property
    def broker_list(self) -> list[str]:
        return [b.strip() for b in self.kafka.brokers.split(",")]


_GROUPS: dict[str, type[BaseModel]] = {
    name: annotation
    for name, field in Settings.model_fields.items()
    if isinstance(annotation := field.annotation, type) and issubclass(annotation, BaseModel)
}
"""Settings' groups by name: `kafka` -> `KafkaSettings`."""


class _Place(NamedTuple):
    """Where a flat name lives: `fraud_shards` is field `shards` of group `fraud`; `workers` is at the top."""

    group: str | None
    field: str
    info: FieldInfo


def _places() -> dict[str, _Place]:
    places: dict[str, _Place] = {}
    for name, info in Settings.model_fields.items():
        group = _GROUPS.get(name)
        if group is None:
            places[name] = _Place(None, name, info)
        else:
            places.update({f"{name}_{leaf}": _Place(name, leaf, field) for leaf, field in group.model_fields.items()})
    return places


_FLAT: dict[str, _Place] = _places()
"""Every setting by its flat name (its variable without the prefix), in the order of the fields."""


def _fold_flat_names(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with flat names of grouped settings moved into their group's mapping (flat names win).

    A group given as a model becomes its fields first, so `fraud=FraudSettings(...)`
    and `fraud_shards=2` combine; anything else (a flat name that is no setting, a
    malformed group) is left for validation to accept or refuse.
    """
    folded = dict(data)
    for name, value in data.items():
        place = _FLAT.get(name)
        if place is None or place.group is None:
            continue
        group, leaf = place.group, place.field
        current = folded.get(group)
        if isinstance(current, BaseModel):
            current = dict(current)
        if current is None or isinstance(current, Mapping):
            del folded[name]
            folded[group] = {**(current or {}), leaf: value}
    return folded


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
