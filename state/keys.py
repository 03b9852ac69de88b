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


def alerts_stream() -> str:
    """Redis stream mirroring the `omni.alerts` topic."""
    return f"{NAMESPACE}:{{alerts}}"


def dlq_stream() -> str:
    """Redis stream mirroring the `omni.dlq` topic."""
    return f"{NAMESPACE}:{{dlq}}"


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
    """Set of the SKUs with `available > 0` at one location at least."""
    return f"{NAMESPACE}:sellable:any"


# --- recommendations (written by the recommend flow, read by the API) ----------


def rec_profile(actor: str) -> str:
    """Fenced hash: the shopper profile document of an actor (`u:<user_id>` or `s:<session_id>`)."""
    return f"{NAMESPACE}:rec:profile:{{{actor}}}"


def rec_neighbours(sku: str) -> str:
    """Fenced hash: the co-visitation neighbours of a SKU, `[[sku, score, category], ...]` strongest first."""
    return f"{NAMESPACE}:rec:nb:{{{sku}}}"


def rec_trending(scope: str) -> str:
    """Fenced hash: the trending SKUs of a scope (`global`, `cat:<c>`, `loc:<id>`, `ch:<channel>`)."""
    return f"{NAMESPACE}:rec:trend:{{{scope}}}"


def rec_item(sku: str) -> str:
    """Fenced hash: the catalog facts of a SKU the recommender uses (`active`, `category`)."""
    return f"{NAMESPACE}:rec:item:{{{sku}}}"


def rec_inactive() -> str:
    """Set of the SKUs the catalog withdrew (`active: false`), kept with their `rec_item` documents."""
    return f"{NAMESPACE}:rec:inactive"


def rec_ranker() -> str:
    """Fenced hash: the learned ranker's weights (`operators.recs.ranker.RankerWeights`)."""
    return f"{NAMESPACE}:rec:ranker"


def rec_experiment(variant: str) -> str:
    """Fenced hash: the live tally of one experiment variant (requests, impressions, clicks, rates)."""
    return f"{NAMESPACE}:rec:exp:{{{variant}}}"


def namespace_pattern() -> str:
    """Pattern matching every key Omnistream owns (for clearing a development database)."""
    return f"{NAMESPACE}:*"


# --- demand forecasts (written by the demand flow, read by the API) ------------


def forecast(sku: str, location_id: str) -> str:
    """Fenced hash: a SKU's daily forecasts at a location (`events.forecast.SkuForecast`); one slot per SKU."""
    return f"{NAMESPACE}:forecast:{{{sku}}}:{location_id}"


def rising(location_id: str) -> str:
    """Fenced hash: a location's rising items (`events.forecast.RisingItems`)."""
    return f"{NAMESPACE}:rising:{{{location_id}}}"
