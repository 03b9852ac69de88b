"""The trigger record of `omni.triggers` (docs/customers.md, "Trigger catalogue").

A trigger says a customer is at a moment that calls for a message (a cart left online, a
failed payment, an item back in stock, a lifecycle change, a spend threshold). It carries
why (`reasons`) and the facts that fired it (`facts`: SKUs, times, amounts, stages), never
raw personal data: the customer is named by the retailer's own pseudonymous id.

`trigger_id` is derived from what fired it (`<kind>:<customer>:<anchor>`), never random,
so a consumer drops the repeats a recovery replay may re-send on the topic; the Redis
stream mirror (`GET /v1/triggers/stream`) adds each id once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import msgspec

from events.outputs import Destination
from events.topics import Topic


class TriggerKind(StrEnum):
    """The trigger catalogue."""

    CART_ABANDONED = "cart_abandoned"
    PAYMENT_FAILED_RECOVERY = "payment_failed_recovery"
    BACK_IN_STOCK = "back_in_stock"
    AT_RISK = "at_risk"
    WIN_BACK = "win_back"
    VIP_REACHED = "vip_reached"


Fact = str | int | float | bool | None


class Trigger(msgspec.Struct, frozen=True, kw_only=True):
    """One trigger as published to `omni.triggers` and its Redis stream.

    `due_at` is the event time it became due (a cart's deadline, a restock's time);
    `ts` repeats it, as every output record of the contract carries a `ts`.
    """

    DESTINATION: ClassVar[Destination] = Destination(Topic.TRIGGERS, "trigger_id", mirrored=True)

    trigger_id: str
    kind: TriggerKind
    customer_id: str
    due_at: str
    reasons: list[str]
    facts: dict[str, Fact]
    source_event_ids: list[str]
    ts: str
