"""The loyalty flow's output records: ledger entries (`omni.loyalty`) and redemption decisions.

Declared once, for the flow that writes them and the API and consumers that read them.
Every entry id is derived from its cause (`<customer>:<kind>:<txn or redemption>[:<rev>]`),
never random: an entry re-sent after a recovery replay is recognisably the same entry, so a
finance system drops the repeat.
"""

from __future__ import annotations

from typing import Literal

import msgspec

EntryKind = Literal["earn", "adjust", "mature", "expire", "redeem", "redeem_rejected"]


class LedgerEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One movement of a member's points, as published to `omni.loyalty`.

    `points` is the signed change of `bucket` (`pending`: earned, not yet spendable until the
    return window passes; `available`: spendable); `mature` moves points from pending to
    available and carries the amount moved. `available` and `pending` are the balances after
    the entry. `unrecovered` counts points a late reversal could not take back because they
    were already spent (the balance never goes below zero).
    """

    entry_id: str
    customer_id: str
    kind: EntryKind
    points: int
    bucket: Literal["pending", "available", "none"]
    ref: str
    ts: str
    available: int
    pending: int
    reason: str | None = None
    unrecovered: int = 0


class RedemptionDecision(msgspec.Struct, frozen=True, kw_only=True):
    """The flow's answer to one redemption request (`GET /v1/loyalty/{customer_id}/redemptions/{id}`)."""

    redemption_id: str
    customer_id: str
    status: Literal["accepted", "rejected"]
    points: int
    reason: str | None
    available: int
    ts: str
    order_ref: str | None = None
