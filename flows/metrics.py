"""Prometheus metrics of the flows: one place names them.

Counters are incremented once per batch with aggregated counts, never per
event (a labelled `inc()` costs about a microsecond: docs/performance.md budgets
the whole event at ~25 us).
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from flows.histogram_batch import observe_many as observe_many  # the flows import it from here

log = logging.getLogger(__name__)

EVENTS_IN = Counter("omnistream_flow_events_total", "Input events decoded, by topic and event type.",
                    ["flow", "topic", "type"])  # fmt: skip
DEAD_LETTERS = Counter("omnistream_flow_dead_letters_total", "Input events sent to the dead-letter stream, by reason.",
                       ["flow", "topic", "reason"])  # fmt: skip
SKIPPED = Counter(
    "omnistream_flow_skipped_total",
    "Malformed input events a flow skipped because another flow dead-letters that topic (flows.dead_letters).",
    ["flow", "topic"],
)
DUPLICATES = Counter("omnistream_flow_duplicates_dropped_total", "Redelivered events dropped by event_id.", ["flow"])
UNMATCHED_VOIDS = Counter(
    "omnistream_flow_unmatched_voids_total",
    "Till voids forgotten before the transaction they name arrived (they changed no stock).",
    ["flow"],
)
UNMATCHED_CANCELS = Counter(
    "omnistream_flow_unmatched_order_cancels_total",
    "Order cancels forgotten before the purchase they needed arrived (they released nothing).",
    ["flow"],
)
REC_FEEDBACK = Counter(
    "omnistream_rec_experiment_events_total",
    "Recommendation experiment counts by variant: requests, impressions, clicks, carts, conversions.",
    ["variant", "counter"],
)
ALERTS = Counter("omnistream_flow_alerts_total", "Alerts raised, by kind and severity.", ["flow", "kind", "severity"])
REDIS_WRITE_SECONDS = Histogram(
    "omnistream_flow_redis_write_seconds", "Wall time of one pipelined Redis write of a batch.", ["flow"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
)  # fmt: skip
STATE_WRITES = Counter("omnistream_flow_state_writes_total", "Versioned records written to Redis, by outcome.",
                       ["flow", "outcome"])  # fmt: skip
END_TO_END_LAG = Histogram(
    "omnistream_flow_end_to_end_lag_seconds",
    "Write time minus the event time of the newest event in the written record.",
    ["flow"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)

CONSUMER_LAG = Gauge(
    "omnistream_flow_consumer_lag_messages",
    "Messages between the Kafka partitions' high watermarks and the worker's positions, by topic (flows.heartbeat).",
    ["flow", "worker", "topic"],
)
LAST_SNAPSHOT = Gauge(
    "omnistream_flow_last_epoch_timestamp_seconds",
    "Wall time the worker last closed an epoch (Bytewax snapshots its state then).", ["flow", "worker"],
)  # fmt: skip
EPOCHS = Gauge("omnistream_flow_epochs", "Epochs the worker has closed since it started.", ["flow", "worker"])


# --- fraud flow (flows/fraud.py) ------------------------------------------------------------------------
FRAUD_SCORES = Histogram(
    "omnistream_fraud_score", "Fraud scores given to payments.", ["flow"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
)  # fmt: skip
FRAUD_DECISIONS = Counter("omnistream_fraud_decisions_total", "Payments scored, by decision.", ["flow", "decision"])
FRAUD_LABELS = Counter(
    "omnistream_fraud_labels_total",
    "fraud_label events and matured payments the supervised model learned from (outcome: fraud, legit, "
    "presumed_legit), or could not join to a scored payment (unmatched).",
    ["flow", "outcome"],
)
FRAUD_MODEL_UPDATES = Gauge(
    "omnistream_fraud_model_updates", "Supervised-model updates so far, per scorer shard.", ["flow", "shard"]
)
FRAUD_RULES = Gauge("omnistream_fraud_rules_info", "The rules file version in force (value 1).", ["flow", "version"])
FRAUD_RULES_RELOADS = Counter(
    "omnistream_fraud_rules_reloads_total", "Rules file reloads, by outcome (applied, refused).", ["flow", "outcome"]
)
MERCH_SUGGESTIONS = Counter(
    "omnistream_merch_suggestions_total",
    "Merchandising suggestion records published, by kind (transfer, markdown) and status (open, withdrawn).",
    ["flow", "kind", "status"],
)
CUSTOMER_TRIGGERS = Counter(
    "omnistream_customer_triggers_total",
    "Trigger candidates of the customers flow, by kind and outcome (sent, cooldown, no_consent).",
    ["flow", "kind", "outcome"],
)
FRAUD_LATE_JOINED = Counter(
    "omnistream_fraud_alert_late_joined_total",
    "Suspicious payments read after their incident had resolved, joined to it silently (no alert raised).",
    ["flow"],
)
LATE_EVENTS = Counter(
    "omnistream_flow_late_events_total",
    "Events older than the flow's watermark when they arrived: applied, but too late to cancel a trigger.",
    ["flow"],
)
LOYALTY_ENTRIES = Counter(
    "omnistream_loyalty_entries_total",
    "Loyalty ledger entries, by kind (earn, adjust, mature, expire, redeem, redeem_rejected).",
    ["flow", "kind"],
)
LOYALTY_REDEMPTIONS = Counter(
    "omnistream_loyalty_redemptions_total",
    "Redemption requests decided, by status and reason (insufficient_points, unknown_customer; none when accepted).",
    ["flow", "status", "reason"],
)
STATE_ENTITIES = Gauge(
    "omnistream_flow_state_entities",
    "Entities held in a flow's state in this process, by stage (SKU ledgers, till transactions, cards, ...).",
    ["flow", "stage"],
)


GC_FROZEN = Gauge(
    "omnistream_flow_gc_frozen_objects",
    "Objects this flow process froze out of the cycle collector's walks (flows/collector.py): its long-lived "
    "tracked state, and any reference cycle frozen alive that died later (never freed).",
    ["flow"],
)


class StateEntities:
    """Entities held per stage of one flow in this process, summed over the stage's shards.

    A stage's state lives in many keyed shards, each reporting its own count;
    the gauge shows their sum, which is what memory and snapshot size follow.
    """

    def __init__(self, flow: str) -> None:
        self.flow = flow
        self._by_stage: dict[str, dict[int, int]] = {}

    def report(self, stage: str, shard: object, count: int) -> None:
        shards = self._by_stage.setdefault(stage, {})
        shards[id(shard)] = count
        STATE_ENTITIES.labels(self.flow, stage).set(sum(shards.values()))


PORTS_PER_FLOW = 16
"""Each flow's processes serve metrics on `base + PORTS_PER_FLOW * flow_ordinal + process_index`."""


def metrics_port(base: int, flow_ordinal: int, process_index: int) -> int:
    """Where one flow process serves its metrics (0 when metrics are off).

    >>> metrics_port(9108, 0, 1), metrics_port(9108, 1, 0), metrics_port(0, 2, 0)
    (9109, 9124, 0)
    """
    return base and base + PORTS_PER_FLOW * flow_ordinal + process_index


def serve_metrics(port: int) -> None:
    """Expose this process's metrics on `port` (0 disables)."""
    if port == 0:
        return
    try:
        start_http_server(port)
    except OSError as ex:  # another process on the same machine holds it: run without, say so
        log.warning("flow metrics not served: port %d unavailable (%s)", port, ex)
