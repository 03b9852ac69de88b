"""The flows' own registry: every flow by name, its module and its snapshot layout.

Both sides of a flow's start read it: `flows.launcher` (in the process that
starts a flow) and `flows.run` (in each flow process). Keeping the table here,
below both, lets `flows.run` use the launcher's recovery helpers while the
launcher needs nothing from `flows.run`: no import cycle. Not to be confused
with `events.registry`, the registry of event types.
"""

from __future__ import annotations

FLOWS: dict[str, str] = {
    "inventory": "flows.inventory",
    "recommend": "flows.recommend",
    "fraud": "flows.fraud",
    "merchandising": "flows.merchandising",
    "customers": "flows.customers",
    "loyalty": "flows.loyalty",
    "attribution": "flows.attribution",
    "demand": "flows.demand",
}
"""Every flow by name and module, in a fixed order: a flow's position sets its metrics ports (flows.metrics)."""

PROMPT_FLOWS: frozenset[str] = frozenset({"inventory", "loyalty"})
"""Flows whose answers are awaited within a tenth of a second (stock after a sale, checkout holds, redemption
decisions): their fetches wait `kafka.fetch_wait_ms` at the broker. The others wait `kafka.relaxed_fetch_wait_ms`:
an idle fetch is a request the broker must answer, and the local broker does not answer a waiting fetch as soon
as data arrives (`flows.kafka_source.fetch_config`)."""

STATE_FORMATS: dict[str, int] = {
    "inventory": 3,
    "recommend": 2,
    "fraud": 3,
    "merchandising": 2,
    "customers": 3,
    "loyalty": 1,
    "attribution": 1,
    "demand": 2,
}
"""The layout of each flow's recovery snapshots. Bump it when a flow's keyed state changes
shape, so that recovery state written by an older release is refused with a clear message, not misread.
inventory 2: ledgers in shards of SKUs (`flows.inventory.LEDGER_SHARDS`), till journals in MessagePack.
inventory 3: one ledger per SKU key (`operators.ledger_shard.LedgerUnit`): snapshots follow what moved.
recommend 2: shards keyed `<stage>:<n>` (`operators.keyed_shards`).
fraud 2: stages keyed by typed shard batches (`operators.keyed_shards`), in-flight payments as msgspec records.
fraud 3: payments awaiting labels in columnar day blocks (`operators.fraud.pending`), labels with their offsets.
merchandising 1: pickled shards of `operators.merch.sku_merch.SkuMerch` keyed `sku:<n>`, till journals by store.
merchandising 2: and an order book per order shard (`operators.order_book`): whole-order cancels reach every line.
customers 1: customer shards of packed states (`operators.customers.shard`), stock watches and gates pickled.
customers 2: customers packed by `operators.customers.packing` (~75 bytes for one purchase, was ~175).
customers 3: customers in `customers.buckets` bucket keys woken by a `clock` key and `timers:<hour>` keys.
loyalty 1: identity, book and ledger shards keyed `<stage>:<n>`, each one pickled `operators.loyalty` object.
attribution 1: actor and member shards keyed `<stage>:<n>` and one `totals` key, pickled `operators.attribution`.
demand 1: open days per (location, SKU) shard, columnar series per location per shard (`operators.demand`).
demand 2: orders with their cancels in the days step, and a `reorders` step of stock and outlooks per shard."""

GENERATION_ENV = "OMNISTREAM_FLOW_GENERATION"
"""The lineage of flow state a run without recovery shares across its processes (`flows.launcher`)."""


def flow_ordinal(name: str) -> int:
    """The flow's position in `FLOWS`, which places its metrics ports (`flows.metrics.metrics_port`).

    >>> flow_ordinal("inventory"), flow_ordinal("fraud")
    (0, 2)
    """
    return list(FLOWS).index(name)
