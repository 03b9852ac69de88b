"""Order events to a flow's order book, by shard of order id: the same routing in every flow that keeps one.

The inventory and merchandising flows each keep an order book (`operators.order_book`), so that an
`order_cancel` naming only its order reaches every line the purchase reserved, in either arrival
order. The book is keyed by shard of order id, and a purchase and its cancels must meet in one
shard: both flows route with this.
"""

from __future__ import annotations

from typing import Any

from operators.shard_keys import ShardKeys, add_to_group

ORDER_SHARDS = 16
"""Keys of the order book step: enough to spread it over workers, few enough to snapshot cheaply."""


class OrderRouter:
    """Groups a batch's order events by shard of order id: one routed item per shard per batch.

    Items of type `marker` name their shard themselves (a `shard` field) and go to it after the
    events before them in the batch: the merchandising flow's release markers, which must follow
    their shard's events through the book.
    """

    def __init__(self, marker: type | None = None) -> None:
        self._shard = ShardKeys("", ORDER_SHARDS)
        self._marker = marker

    def shard_of(self, order_id: str) -> str:
        """The order book key of `order_id`."""
        return self._shard(order_id)

    def group(self, events: list[Any]) -> list[tuple[str, list[Any]]]:
        groups: dict[str, list[Any]] = {}
        shard, marker = self._shard, self._marker
        for event in events:
            item: Any = event  # `type(...) is marker` would narrow `event` to `object`
            add_to_group(groups, item.shard if type(event) is marker else shard(item.order_id), event)
        return list(groups.items())
