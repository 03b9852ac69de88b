"""Every Redis key Omnistream uses, one function per fact. Nothing else spells a key.

The entity id sits inside `{}` so that all keys of one SKU share a Redis
Cluster hash slot (a fenced write touches one key; readers may pipeline).
Streams and their dedup markers share a tag too, because the script that adds
to a stream checks the marker in the same call.
"""

from __future__ import annotations

NAMESPACE = "omni"

# Every fenced hash (stock, and each document a flow writes) holds these fields.
VERSION_FIELD = "version"
GENERATION_FIELD = "generation"
DOC_FIELD = "doc"
# The stock hash also keeps the SKU's sellable map (location id -> 1 or 0) its sellable sets were last set from.
SELLABLE_FIELD = "sellable"
STOCK_VERSION_FIELD = VERSION_FIELD
STOCK_GENERATION_FIELD = GENERATION_FIELD
STOCK_DOC_FIELD = DOC_FIELD


def stock(sku: str) -> str:
    """Hash holding one SKU's stock: `generation`, `version` and `doc` (the API's SKU object)."""
    return f"{NAMESPACE}:stock:{{{sku}}}"


def topic_stream(topic: str) -> str:
    """Redis stream mirroring an output topic, by its unprefixed name (`events.topics.Topic`: `alerts`, `triggers`)."""
    return f"{NAMESPACE}:{{{topic}}}"


def alerts_stream() -> str:
    """Redis stream mirroring the `omni.alerts` topic."""
    return topic_stream("alerts")


def dlq_stream() -> str:
    """Redis stream mirroring the `omni.dlq` topic."""
    return topic_stream("dlq")


def score(payment_id: str) -> str:
    """Hash holding one payment's fraud score (`txn_id` or `order_id`): fenced `doc`, expires (TTL)."""
    return f"{NAMESPACE}:score:{{{payment_id}}}"


def fraud_model(shard: int) -> str:
    """Hash holding one fraud scorer shard's model document: model version in force, labels learned."""
    return f"{NAMESPACE}:fraud:model:{{{shard}}}"


def fraud_model_pattern() -> str:
    """Pattern matching every scorer shard's model document."""
    return f"{NAMESPACE}:fraud:model:*"


def stream_marker(stream_key: str, generation: str, record_id: str) -> str:
    """Marker that `record_id` of flow-state lineage `generation` is already in `stream_key` (same slot)."""
    return f"{stream_key}:seen:{generation}:{record_id}"


# --- stock-aware filter (written by the inventory flow with each SKU's stock) -----


def sellable_at(location_id: str) -> str:
    """Set of the SKUs with `available > 0` at `location_id` (positive: a SKU never stocked there is absent)."""
    return f"{NAMESPACE}:sellable:loc:{{{location_id}}}"


def sellable_anywhere() -> str:
    """Set of the SKUs with `available > 0` at one location at least (tagged: its `flag_versions` shares its slot)."""
    return f"{NAMESPACE}:sellable:{{any}}"


# --- recommendations (written by the recommend flow, read by the API) ----------


def rec_profile(actor: str) -> str:
    """Fenced hash: the shopper profile document of an actor (`u:<user_id>` or `s:<session_id>`)."""
    return f"{NAMESPACE}:rec:profile:{{{actor}}}"


def rec_neighbours(sku: str) -> str:
    """Fenced hash: the co-visitation neighbours of a SKU, `[[sku, score, category], ...]` strongest first."""
    return f"{NAMESPACE}:rec:nb:{{{sku}}}"


def rec_similar(actor: str) -> str:
    """Fenced hash: what the shoppers most like an actor viewed (session kNN), `[[sku, score, ""], ...]` best first."""
    return f"{NAMESPACE}:rec:sim:{{{actor}}}"


def rec_trending(scope: str) -> str:
    """Fenced hash: the trending SKUs of a scope (`global`, `cat:<c>`, `loc:<id>`, `ch:<channel>`)."""
    return f"{NAMESPACE}:rec:trend:{{{scope}}}"


def rec_item(sku: str) -> str:
    """Fenced hash: the catalog facts of a SKU the recommender uses (`active`, `category`)."""
    return f"{NAMESPACE}:rec:item:{{{sku}}}"


def rec_inactive() -> str:
    """Set of the SKUs the catalog withdrew (`active: false`), kept with their `rec_item` documents."""
    return f"{NAMESPACE}:rec:{{inactive}}"


def rec_ranker() -> str:
    """Fenced hash: the learned ranker's weights (`operators.recs.ranker.RankerWeights`)."""
    return f"{NAMESPACE}:rec:ranker"


def rec_experiment(variant: str) -> str:
    """Fenced hash: the live tally of one experiment variant (requests, impressions, clicks, rates)."""
    return f"{NAMESPACE}:rec:exp:{{{variant}}}"


# --- merchandising suggestions (written by the merchandising flow, read by the API) ----------


def suggestions(kind: str, sku: str) -> str:
    """Fenced hash: one SKU's open suggestions of `kind` (`transfer`: a list, `markdown`: one or null)."""
    return f"{NAMESPACE}:suggest:{kind}:{{{sku}}}"


def suggestion_skus(kind: str) -> str:
    """Set of the SKUs with an open suggestion of `kind`, kept with their `suggestions` documents."""
    return f"{NAMESPACE}:suggest:{kind}:skus"


# --- loyalty (written by the loyalty flow and the redemption API, read by the API) ------


def loyalty_member(customer_id: str) -> str:
    """Fenced hash: a member's balances, tier and recent ledger entries (`GET /v1/loyalty/{customer_id}`)."""
    return f"{NAMESPACE}:loyalty:{{{customer_id}}}"


def loyalty_redemption(customer_id: str, redemption_id: str) -> str:
    """Fenced hash (expires): the flow's decision on one redemption request, in its member's slot."""
    return f"{NAMESPACE}:loyalty:{{{customer_id}}}:redemption:{redemption_id}"


def loyalty_idempotency(customer_id: str, idempotency_key: str) -> str:
    """String (expires): the redemption a POST's `Idempotency-Key` stands for, with its request's fingerprint."""
    return f"{NAMESPACE}:loyalty:{{{customer_id}}}:idem:{idempotency_key}"


def attribution_day(day: str) -> str:
    """Fenced hash: one day's conversions, heuristic credits and path counts (`GET /v1/attribution`)."""
    return f"{NAMESPACE}:attr:day:{{{day}}}"


def flag_versions(flag_set: str) -> str:
    """Hash beside a flag set (same hash tag, same slot): member -> `generation|version` of the write that last set it.

    A flag set (`sellable_at`, `sellable_anywhere`, `rec_inactive`) is written in a call of
    its own, not in the call that fences the entity's hash (another slot, on Redis Cluster),
    so each membership carries its own version fence here (`state.flag_sets`).

    >>> flag_versions(sellable_at("S1"))
    'omni:sellable:loc:{S1}:v'
    """
    return f"{flag_set}:v"


def namespace_pattern() -> str:
    """Pattern matching every key Omnistream owns (for clearing a development database)."""
    return f"{NAMESPACE}:*"


# --- customers (written by the customers flow, read by the API) ------------------


def customer(customer_id: str) -> str:
    """Fenced hash: one customer's document (lifecycle, RFM inputs, channels, reasons)."""
    return f"{NAMESPACE}:cust:{{{customer_id}}}"


def segment(name: str) -> str:
    """Sorted set (all scores 0, so ordered by id) of the members of a segment: a lifecycle stage or `vip`."""
    return f"{NAMESPACE}:seg:{{{name}}}"


def customer_population(scope: str) -> str:
    """Fenced hash: the RFM histograms of a scope of customers (`global`, `country:DE`), for scores."""
    return f"{NAMESPACE}:pop:{{{scope}}}"


def triggers_stream() -> str:
    """Redis stream mirroring the `omni.triggers` topic."""
    return topic_stream("triggers")


# --- API keys (created and revoked with `omnistream keys`, read by the API) -----


def api_keys() -> str:
    """Hash of the API keys: field = SHA-256 hex of a key, value = its record (`state.api_keys.KeyRecord`).

    One key for all of them: one hash slot, one HGET per lookup, and `omnistream keys list`
    is one HGETALL. The keys themselves are never stored.
    """
    return f"{NAMESPACE}:apikeys"


def flow_health() -> str:
    """Hash of the flows' heartbeats: field `<flow>/<worker>`, value a small JSON document (`state.flow_health`)."""
    return f"{NAMESPACE}:flowhealth"


def recovery_rendezvous(flow: str, generation: str) -> str:
    """Hash where the members of a flow's cluster spread over hosts meet before they start (field: process id).

    `state.recovery_rendezvous`: each member's share of the recovery rows, so that all agree on the
    epoch the cluster resumes from.
    """
    return f"{NAMESPACE}:recovery:{flow}:{generation}"


# --- orders, checkout holds and idempotent requests (the inventory flow and the API) -----


def order(order_id: str) -> str:
    """Hash of one order's lines: per line `l:<line>` (its document) and `v:<line>` (its fence), `generation`."""
    return f"{NAMESPACE}:order:{{{order_id}}}"


def reservation(reservation_id: str) -> str:
    """Fenced hash: a checkout hold's decision (`doc`), and `request`, written by the API when it was asked."""
    return f"{NAMESPACE}:reservation:{{{reservation_id}}}"


def idempotency(scope: str, key: str) -> str:
    """String: the answer to the first request of `scope` (`reservations`) sent with an `Idempotency-Key`."""
    return f"{NAMESPACE}:idem:{scope}:{{{key}}}"


# --- demand forecasts (written by the demand flow, read by the API) ------------


def forecast(sku: str, location_id: str) -> str:
    """Fenced hash: a SKU's daily forecasts at a location (`events.forecast.SkuForecast`); one slot per SKU."""
    return f"{NAMESPACE}:forecast:{{{sku}}}:{location_id}"


def rising(location_id: str) -> str:
    """Fenced hash: a location's rising items (`events.forecast.RisingItems`)."""
    return f"{NAMESPACE}:rising:{{{location_id}}}"


def reorder(sku: str, location_id: str) -> str:
    """Fenced hash: the open reorder suggestion of a SKU at a location (`events.suggestions.ReorderSuggestion`,
    or `null`); the demand flow keeps the pair in `suggestion_skus("reorder")` (as `reorder_member`) while open."""
    return f"{NAMESPACE}:suggest:reorder:{{{sku}}}:{location_id}"


def reorder_member(sku: str, location_id: str) -> str:
    """The member of `suggestion_skus("reorder")` naming a (SKU, location) pair: `<sku>\x1f<location_id>`."""
    return f"{sku}\x1f{location_id}"
