"""Settings grouped per component read the same `OMNISTREAM_*` variables as the flat settings did.

Deployments set variables, code names settings flat in many places (`Settings(fraud_shards=4)`,
`model_copy(update={"flow_stop_at_end": True})`): both must keep working, and a bad value must
still be reported under the variable that carries it.
"""

from __future__ import annotations

import operator
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from events.topics import Topic
from flows.launcher import settings_env
from omnistream.settings import FraudSettings, KafkaSettings, Settings, settings_or_exit

VARIABLES = {
    "OMNISTREAM_KAFKA_BROKERS", "OMNISTREAM_REDIS_URL", "OMNISTREAM_TOPIC_PREFIX", "OMNISTREAM_TOPIC_PARTITIONS",
    "OMNISTREAM_API_HOST", "OMNISTREAM_API_PORT", "OMNISTREAM_API_REDIS_TIMEOUT_MS", "OMNISTREAM_RECOVERY_DIR",
    "OMNISTREAM_RECOVERY_PARTITIONS", "OMNISTREAM_SNAPSHOT_INTERVAL_S", "OMNISTREAM_BACKUP_INTERVAL_S",
    "OMNISTREAM_WORKERS", "OMNISTREAM_PROCESSES", "OMNISTREAM_KAFKA_BATCH_SIZE", "OMNISTREAM_KAFKA_FETCH_WAIT_MS",
    "OMNISTREAM_DEDUP_WINDOW_S", "OMNISTREAM_COUNT_WINDOW_S", "OMNISTREAM_ORDER_RETENTION_S",
    "OMNISTREAM_LOW_STOCK_THRESHOLD", "OMNISTREAM_FLOW_METRICS_PORT", "OMNISTREAM_FLOW_STOP_AT_END",
    "OMNISTREAM_SIM_SEED", "OMNISTREAM_FRAUD_RULES_PATH", "OMNISTREAM_FRAUD_RULES_CHECK_S",
    "OMNISTREAM_FRAUD_SCORE_TTL_S", "OMNISTREAM_FRAUD_REVIEW_THRESHOLD", "OMNISTREAM_FRAUD_BLOCK_THRESHOLD",
    "OMNISTREAM_FRAUD_SHARDS", "OMNISTREAM_FRAUD_MAX_ENTITIES", "OMNISTREAM_FRAUD_DEDUP_IDS",
    "OMNISTREAM_FRAUD_SCORER_MODE",
    "OMNISTREAM_FRAUD_LABEL_HORIZON_S", "OMNISTREAM_FRAUD_LABEL_MATURITY_S",
    "OMNISTREAM_FRAUD_LABEL_MAX_PENDING", "OMNISTREAM_FRAUD_ALERT_QUIET_S",
    "OMNISTREAM_FRAUD_LEARN_CHUNK_S", "OMNISTREAM_FRAUD_ORDER_IDLE_S", "OMNISTREAM_FRAUD_ORDER_IDLE_BATCHES",
    "OMNISTREAM_FRAUD_ORDER_QUIET_S",
    "OMNISTREAM_OPS_SILENCE_STORE_S", "OMNISTREAM_OPS_SILENCE_REGISTER_S", "OMNISTREAM_OPS_TICK_S",
    "OMNISTREAM_API_SSE_KEEPALIVE_S", "OMNISTREAM_LOG_LEVEL", "OMNISTREAM_FRAUD_MEMORY_BUDGET_MB",
    "OMNISTREAM_REC_SHARDS", "OMNISTREAM_REC_NEIGHBOURS_HALF_LIFE_S", "OMNISTREAM_REC_NEIGHBOURS_CAPACITY",
    "OMNISTREAM_REC_NEIGHBOURS_PUBLISHED", "OMNISTREAM_REC_TRAIL_ITEMS", "OMNISTREAM_REC_TRAIL_WINDOW_S",
    "OMNISTREAM_REC_POSITION_DECAY", "OMNISTREAM_REC_TRENDING_HALF_LIFE_GLOBAL_S",
    "OMNISTREAM_REC_TRENDING_HALF_LIFE_CATEGORY_S", "OMNISTREAM_REC_TRENDING_HALF_LIFE_LOCATION_S",
    "OMNISTREAM_REC_TRENDING_HALF_LIFE_CHANNEL_S", "OMNISTREAM_REC_TRENDING_CAPACITY",
    "OMNISTREAM_REC_TRENDING_PUBLISHED", "OMNISTREAM_REC_PROFILE_RECENT", "OMNISTREAM_REC_PROFILE_HALF_LIFE_S",
    "OMNISTREAM_REC_PROFILE_TTL_S", "OMNISTREAM_REC_DOC_TTL_S", "OMNISTREAM_REC_NEIGHBOURS_WRITE_INTERVAL_S",
    "OMNISTREAM_REC_TRENDING_WRITE_INTERVAL_S", "OMNISTREAM_REC_ACTOR_CAPACITY", "OMNISTREAM_REC_ITEM_CAPACITY",
    "OMNISTREAM_REC_KNN_SESSIONS", "OMNISTREAM_REC_KNN_SESSION_ITEMS", "OMNISTREAM_REC_KNN_SESSIONS_PER_SKU",
    "OMNISTREAM_REC_KNN_NEIGHBOURS", "OMNISTREAM_REC_KNN_PUBLISHED", "OMNISTREAM_REC_KNN_REPLICAS",
    "OMNISTREAM_REC_CATALOG_CAPACITY", "OMNISTREAM_REC_FEEDBACK_WINDOW_S", "OMNISTREAM_REC_VARIANTS",
    "OMNISTREAM_REC_EXPERIMENT_SALT", "OMNISTREAM_REC_RANKER_LEARNING_RATE", "OMNISTREAM_REC_API_CACHE_S",
    "OMNISTREAM_REC_SERVED_QUEUE_MAX", "OMNISTREAM_REC_SOAK_RSS_BUDGET_MB",
    "OMNISTREAM_MERCH_SHARDS", "OMNISTREAM_MERCH_HALF_LIFE_S", "OMNISTREAM_MERCH_BASKET_CAP",
    "OMNISTREAM_MERCH_REVIEW_INTERVAL_S", "OMNISTREAM_MERCH_REVIEW_STEP_S",
    "OMNISTREAM_MERCH_LEAD_TIME_DAYS", "OMNISTREAM_MERCH_HORIZON_DAYS",
    "OMNISTREAM_MERCH_TRIGGER_COVER_DAYS", "OMNISTREAM_MERCH_TARGET_COVER_DAYS", "OMNISTREAM_MERCH_KEEP_DAYS",
    "OMNISTREAM_MERCH_MIN_KEEP_UNITS", "OMNISTREAM_MERCH_MIN_LOT", "OMNISTREAM_MERCH_TRANSFER_COST",
    "OMNISTREAM_MERCH_TRANSFER_COST_PER_UNIT", "OMNISTREAM_MERCH_MARGIN_RATE", "OMNISTREAM_MERCH_TRANSIT_TIMEOUT_S",
    "OMNISTREAM_MERCH_SEASON_END", "OMNISTREAM_MERCH_MARKDOWN_FLOOR_SHARE",
    "OMNISTREAM_MERCH_MARKDOWN_MAX_DISCOUNT", "OMNISTREAM_MERCH_MARKDOWN_STEP",
    "OMNISTREAM_MERCH_MARKDOWN_MIN_COVER_DAYS", "OMNISTREAM_MERCH_MARKDOWN_MIN_AGE_DAYS",
    "OMNISTREAM_MERCH_MARKDOWN_ELASTICITY", "OMNISTREAM_MERCH_MARKDOWN_MAX_CHANGE",
    "OMNISTREAM_MERCH_MARKDOWN_CADENCE_DAYS",
    "OMNISTREAM_CUSTOMERS_SHARDS", "OMNISTREAM_CUSTOMERS_WINDOWS_DAYS", "OMNISTREAM_CUSTOMERS_NEW_DAYS",
    "OMNISTREAM_CUSTOMERS_AT_RISK_DAYS", "OMNISTREAM_CUSTOMERS_LAPSED_DAYS", "OMNISTREAM_CUSTOMERS_WON_BACK_DAYS",
    "OMNISTREAM_CUSTOMERS_VIP_SPEND", "OMNISTREAM_CUSTOMERS_CART_WINDOW_S", "OMNISTREAM_CUSTOMERS_PAYMENT_WINDOW_S",
    "OMNISTREAM_CUSTOMERS_WATCH_WINDOW_S", "OMNISTREAM_CUSTOMERS_COOLDOWN_S", "OMNISTREAM_CUSTOMERS_LATENESS_S",
    "OMNISTREAM_CUSTOMERS_IDLE_PARTITION_S", "OMNISTREAM_CUSTOMERS_CONSENT_REQUIRED",
    "OMNISTREAM_CUSTOMERS_MAX_FUTURE_S", "OMNISTREAM_CUSTOMERS_BUCKETS",
    # Added with the loyalty and attribution flows.
    "OMNISTREAM_LOYALTY_RULES_PATH", "OMNISTREAM_LOYALTY_SHARDS", "OMNISTREAM_LOYALTY_RETURN_WINDOW_S",
    "OMNISTREAM_LOYALTY_EXPIRY_S", "OMNISTREAM_LOYALTY_TIER_WINDOW_S", "OMNISTREAM_LOYALTY_LINK_LOOKBACK_S",
    "OMNISTREAM_LOYALTY_TXN_RETENTION_S", "OMNISTREAM_LOYALTY_TICK_S", "OMNISTREAM_LOYALTY_LATENESS_S",
    "OMNISTREAM_LOYALTY_ENTRIES_KEPT", "OMNISTREAM_LOYALTY_REDEMPTION_TTL_S", "OMNISTREAM_LOYALTY_REDEMPTION_WAIT_MS",
    "OMNISTREAM_ATTRIBUTION_SHARDS", "OMNISTREAM_ATTRIBUTION_LOOKBACK_S", "OMNISTREAM_ATTRIBUTION_HALF_LIFE_S",
    "OMNISTREAM_ATTRIBUTION_TICK_S", "OMNISTREAM_ATTRIBUTION_MAX_PATHS", "OMNISTREAM_ATTRIBUTION_API_CACHE_S",
    "OMNISTREAM_ATTRIBUTION_MAX_DAYS",
    "OMNISTREAM_CLUSTER_ADDRESS_TEMPLATE", "OMNISTREAM_CLUSTER_PROCESS_ID", "OMNISTREAM_CLUSTER_GENERATION",
    "OMNISTREAM_CLUSTER_RENDEZVOUS_TIMEOUT_S",
    # API keys, Redis and Kafka credentials and TLS
    "OMNISTREAM_AUTH_ENABLED", "OMNISTREAM_AUTH_KEY_CACHE_S", "OMNISTREAM_AUTH_RATE_PER_S", "OMNISTREAM_AUTH_BURST_S",
    "OMNISTREAM_REDIS_USERNAME", "OMNISTREAM_REDIS_PASSWORD", "OMNISTREAM_REDIS_TLS_CA_FILE",
    "OMNISTREAM_REDIS_TLS_CERT_FILE", "OMNISTREAM_REDIS_TLS_KEY_FILE", "OMNISTREAM_KAFKA_SECURITY_PROTOCOL",
    "OMNISTREAM_KAFKA_SASL_MECHANISM", "OMNISTREAM_KAFKA_SASL_USERNAME", "OMNISTREAM_KAFKA_SASL_PASSWORD",
    "OMNISTREAM_KAFKA_SSL_CA_FILE", "OMNISTREAM_KAFKA_SSL_CERT_FILE", "OMNISTREAM_KAFKA_SSL_KEY_FILE",
    # Orders, checkout holds and fulfilment options (added with them).
    "OMNISTREAM_ORDERS_DOC_TTL_S", "OMNISTREAM_RESERVATIONS_HOLD_S", "OMNISTREAM_RESERVATIONS_MAX_HOLD_S",
    "OMNISTREAM_RESERVATIONS_DOC_TTL_S", "OMNISTREAM_RESERVATIONS_IDEMPOTENCY_TTL_S",
    "OMNISTREAM_RESERVATIONS_PUBLISH_TIMEOUT_S", "OMNISTREAM_FULFILMENT_SHIP_COSTS",
    "OMNISTREAM_FULFILMENT_DEFAULT_SHIP_COST", "OMNISTREAM_FULFILMENT_STORE_HANDLING_COST",
    "OMNISTREAM_FULFILMENT_WAREHOUSE_HANDLING_COST", "OMNISTREAM_FULFILMENT_SPLIT_PENALTY",
    "OMNISTREAM_FULFILMENT_STORE_SAFETY_STOCK", "OMNISTREAM_FULFILMENT_WAREHOUSE_PREFIXES",
    "OMNISTREAM_FULFILMENT_MAX_SOURCES",
    "OMNISTREAM_DEMAND_LOCATIONS", "OMNISTREAM_DEMAND_SHARDS", "OMNISTREAM_DEMAND_LATENESS_S",
    "OMNISTREAM_DEMAND_ALPHA", "OMNISTREAM_DEMAND_INTERVAL", "OMNISTREAM_DEMAND_HORIZON_DAYS",
    "OMNISTREAM_DEMAND_RISING_KEPT", "OMNISTREAM_DEMAND_IDLE_DAYS", "OMNISTREAM_DEMAND_REORDER_REVIEW_DAYS",
    "OMNISTREAM_DEMAND_REORDER_CHANGE_SHARE", "OMNISTREAM_DEMAND_RISING_ALPHA", "OMNISTREAM_DEMAND_GLOBAL_MODEL",
    "OMNISTREAM_DEMAND_GLOBAL_LEARNING_RATE",
    "OMNISTREAM_FRAUD_SCORER_SHARDS", "OMNISTREAM_FRAUD_REVIEW_BUDGET_PER_DAY", "OMNISTREAM_FRAUD_BLOCK_PRECISION",
    "OMNISTREAM_CUSTOMERS_POLL_PACE_S", "OMNISTREAM_KAFKA_RELAXED_FETCH_WAIT_MS", "OMNISTREAM_MAX_FUTURE_S",
}  # fmt: skip
"""Every variable the flat settings read (those from before they were grouped, and newer ones), written out:
deployments set these."""


@pytest.fixture(autouse=True)
def no_omnistream_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Each test sees only the variables it sets itself."""
    for key in list(os.environ):
        if key.upper().startswith("OMNISTREAM_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_every_variable_keeps_its_name() -> None:
    assert {"OMNISTREAM_" + name.upper() for name in Settings.flat_fields()} == VARIABLES


@pytest.mark.parametrize(
    ("variable", "raw", "path", "expected"),
    [
        ("OMNISTREAM_KAFKA_BROKERS", "k1:9092,k2:9092", "kafka.brokers", "k1:9092,k2:9092"),
        ("OMNISTREAM_KAFKA_FETCH_WAIT_MS", "250", "kafka.fetch_wait_ms", 250),
        ("OMNISTREAM_TOPIC_PREFIX", "shop.", "topic.prefix", "shop."),
        ("OMNISTREAM_TOPIC_PARTITIONS", "12", "topic.partitions", 12),
        ("OMNISTREAM_REDIS_URL", "rediss://cache:6380/2", "redis.url", "rediss://cache:6380/2"),
        ("OMNISTREAM_API_REDIS_TIMEOUT_MS", "120", "api.redis_timeout_ms", 120),
        ("OMNISTREAM_API_SSE_KEEPALIVE_S", "30", "api.sse_keepalive_s", 30.0),
        ("OMNISTREAM_RECOVERY_DIR", "/var/lib/omnistream", "recovery.dir", Path("/var/lib/omnistream")),
        ("OMNISTREAM_RECOVERY_DIR", "", "recovery.dir", None),
        ("OMNISTREAM_FLOW_STOP_AT_END", "true", "flow.stop_at_end", True),
        ("OMNISTREAM_SIM_SEED", "11", "sim.seed", 11),
        ("OMNISTREAM_FRAUD_SHARDS", "16", "fraud.shards", 16),
        ("OMNISTREAM_FRAUD_REVIEW_THRESHOLD", "0.4", "fraud.review_threshold", 0.4),
        ("OMNISTREAM_FRAUD_BLOCK_THRESHOLD", "", "fraud.block_threshold", None),
        ("OMNISTREAM_OPS_TICK_S", "30", "ops.tick_s", 30.0),
        ("OMNISTREAM_REC_TRENDING_HALF_LIFE_GLOBAL_S", "60", "rec.trending_half_life_global_s", 60.0),
        ("OMNISTREAM_REC_API_CACHE_S", "0", "rec.api_cache_s", 0.0),
        ("OMNISTREAM_WORKERS", "3", "workers", 3),
        ("OMNISTREAM_SNAPSHOT_INTERVAL_S", "5", "snapshot_interval_s", 5.0),
        ("OMNISTREAM_LOG_LEVEL", "DEBUG", "log_level", "DEBUG"),
    ],
)
def test_a_variable_sets_the_field_of_its_group(
    no_omnistream_environment: pytest.MonkeyPatch, variable: str, raw: str, path: str, expected: object
) -> None:
    no_omnistream_environment.setenv(variable, raw)
    assert operator.attrgetter(path)(Settings()) == expected


NUMERIC = sorted(
    name
    for name, info in Settings.flat_fields().items()
    if any(kind in str(info.annotation) for kind in ("int", "float")) and info.annotation is not bool
)


@pytest.mark.parametrize("name", NUMERIC)
def test_a_non_number_in_any_numeric_variable_stops_start_up_naming_it(
    no_omnistream_environment: pytest.MonkeyPatch, name: str
) -> None:
    """Every numeric variable is read (a value that is no number fails), and the one line names it."""
    variable = "OMNISTREAM_" + name.upper()
    no_omnistream_environment.setenv(variable, "plenty")
    with pytest.raises(SystemExit) as stopped:
        settings_or_exit()
    lines = str(stopped.value.code).splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"omnistream: bad configuration: {variable}: "), lines


@pytest.mark.parametrize(
    ("variable", "raw", "reason"),
    [
        ("OMNISTREAM_FRAUD_SHARDS", "0", "greater than or equal to 1"),
        ("OMNISTREAM_KAFKA_BROKERS", "broker-without-port", "expected host:port"),
        ("OMNISTREAM_REDIS_URL", "http://cache:6379", "expected a URL starting with one of"),
        ("OMNISTREAM_TOPIC_PREFIX", "omni pos", "only letters, digits"),
        ("OMNISTREAM_API_PORT", "70000", "less than or equal to 65535"),
        ("OMNISTREAM_LOG_LEVEL", "LOUD", "should match pattern"),
    ],
)
def test_a_bad_value_is_reported_under_its_variable(
    no_omnistream_environment: pytest.MonkeyPatch, variable: str, raw: str, reason: str
) -> None:
    no_omnistream_environment.setenv(variable, raw)
    with pytest.raises(SystemExit) as stopped:
        settings_or_exit()
    message = str(stopped.value.code)
    assert message.startswith(f"omnistream: bad configuration: {variable}: ") and reason in message, message


def test_a_bad_flat_override_is_reported_under_its_variable() -> None:
    with pytest.raises(SystemExit) as stopped:
        settings_or_exit(fraud_shards=0)
    assert str(stopped.value.code).startswith("omnistream: bad configuration: OMNISTREAM_FRAUD_SHARDS: ")


def test_an_unknown_variable_of_a_group_is_ignored_as_before(no_omnistream_environment: pytest.MonkeyPatch) -> None:
    """A deployment that still sets a retired variable keeps starting, and a flow process its launcher's own.

    The launcher gives each flow process OMNISTREAM_FLOW_GENERATION (and earlier releases also set
    OMNISTREAM_FLOW_PROCESS_INDEX), which are read into the `flow` group as unknown fields.
    """
    no_omnistream_environment.setenv("OMNISTREAM_FLOW_GENERATION", "3f9a0c2e")
    no_omnistream_environment.setenv("OMNISTREAM_FLOW_PROCESS_INDEX", "1")
    no_omnistream_environment.setenv("OMNISTREAM_FRAUD_RETIRED_KNOB", "1")
    no_omnistream_environment.setenv("OMNISTREAM_RETIRED_KNOB", "1")
    assert Settings() == Settings(fraud=FraudSettings())


def test_flat_nested_and_model_overrides_give_the_same_settings() -> None:
    flat = Settings(fraud_shards=2, kafka_fetch_wait_ms=100, workers=2)
    nested = Settings(fraud={"shards": 2}, kafka={"fetch_wait_ms": 100}, workers=2)
    models = Settings(fraud=FraudSettings(shards=2), kafka=KafkaSettings(fetch_wait_ms=100), workers=2)
    assert flat == nested == models
    assert (flat.fraud.shards, flat.kafka.fetch_wait_ms, flat.workers) == (2, 100, 2)
    assert flat.fraud.max_entities == 50_000, "the group's other fields keep their defaults"


def test_a_flat_override_beats_its_variable_and_keeps_the_groups_others(
    no_omnistream_environment: pytest.MonkeyPatch,
) -> None:
    no_omnistream_environment.setenv("OMNISTREAM_FRAUD_SHARDS", "8")
    no_omnistream_environment.setenv("OMNISTREAM_FRAUD_MAX_ENTITIES", "500")
    settings = Settings(fraud_shards=2)
    assert (settings.fraud.shards, settings.fraud.max_entities) == (2, 500)


def test_a_flat_override_combines_with_its_group_given_whole() -> None:
    settings = Settings(fraud=FraudSettings(max_entities=500), fraud_shards=2)
    assert (settings.fraud.shards, settings.fraud.max_entities) == (2, 500)


def test_model_copy_puts_flat_names_in_their_group_and_leaves_the_original() -> None:
    original = Settings(fraud_shards=2)
    copy = original.model_copy(update={"flow_stop_at_end": True, "fraud_max_entities": 500, "workers": 4})
    assert (copy.flow.stop_at_end, copy.fraud.max_entities, copy.fraud.shards, copy.workers) == (True, 500, 2, 4)
    assert (original.flow.stop_at_end, original.fraud.max_entities, original.workers) == (False, 50_000, 1)


def test_model_copy_takes_part_of_a_group_or_a_whole_one() -> None:
    original = Settings(fraud_shards=2)
    partial = original.model_copy(update={"fraud": {"max_entities": 500}})
    whole = original.model_copy(update={"fraud": FraudSettings(max_entities=500)})
    assert (partial.fraud.shards, partial.fraud.max_entities) == (2, 500)
    assert (whole.fraud.shards, whole.fraud.max_entities) == (4, 500)


@pytest.mark.parametrize("update", [{"flow_stop_at_ends": True}, {"fraud": {"shard": 2}}], ids=["flat", "nested"])
def test_model_copy_refuses_a_misspelt_name(update: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="has no setting"):
        Settings().model_copy(update=update)


def test_settings_and_their_groups_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.fraud.shards = 2  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.workers = 2  # type: ignore[misc]


def test_a_child_process_reads_back_the_same_settings(no_omnistream_environment: pytest.MonkeyPatch) -> None:
    """The launcher hands a flow process its settings as variables; they must read back equal."""
    settings = Settings(kafka_brokers="k1:9092,k2:9092", topic_prefix="shop.", recovery_dir="", fraud_shards=16,
                        fraud_review_threshold=0.4, flow_stop_at_end=True, rec_variants="blend:1",
                        rec_trending_half_life_global_s=60.0, workers=2, log_level="INFO")  # fmt: skip
    for variable, value in settings_env(settings).items():
        no_omnistream_environment.setenv(variable, value)
    assert set(settings_env(settings)) == VARIABLES
    assert Settings() == settings


def test_no_top_level_setting_starts_like_a_group() -> None:
    """OMNISTREAM_<GROUP>_<REST> is read into the group: a top-level `flow_x` would be read twice."""
    groups = {name for name in Settings.model_fields if name not in Settings.flat_fields()}
    clashing = [name for name in Settings.model_fields if any(name.startswith(f"{g}_") for g in groups)]
    assert not clashing


def test_topic_names_and_broker_list_come_from_their_groups() -> None:
    settings = Settings(topic_prefix="shop.", kafka_brokers="k1:9092, k2:9092")
    assert (settings.topic(Topic.POS), settings.topic.prefix) == ("shop.pos", "shop.")
    assert settings.broker_list == ["k1:9092", "k2:9092"]


def test_the_api_refuses_bad_experiment_arms_under_their_variable() -> None:
    """Settings import no operator, so the arms are parsed where they are used: the API, before it serves."""
    from serving.app import create_app

    with pytest.raises(SystemExit) as stopped:
        create_app(Settings(rec_variants="blend:x"))
    assert str(stopped.value.code).startswith("omnistream: bad configuration: OMNISTREAM_REC_VARIANTS: ")
