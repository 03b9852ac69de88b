"""A member document's version is a figure of the events, not of how a run batched or interleaved them.

The version fences the document in Redis: a recovery replay re-sends the events since the last
snapshot, often batched differently (the book then folds a sale and its return into one
`TxnPoints`) and, across topics, in another order. If the replay ended on a lower version than
the killed run had written, its document, newer by the events read since, would be refused.
"""

from __future__ import annotations

import random

from operators.loyalty.book import TxnBook
from operators.loyalty.ledger import MemberLedger
from operators.loyalty.records import (
    Cancelled,
    CategoryKnown,
    Fulfilled,
    Line,
    Opened,
    RedeemAsked,
    Returned,
    Tick,
    ToBook,
)
from operators.loyalty.rules import EarnRules

DAY = 86_400.0
RULES = EarnRules("t", {"pos": 1000, "web": 1000}, category_milli={"grocery": 2000})


def _events() -> list[ToBook]:
    return [
        Opened("T1", "C1", "pos", 0.0, (Line("A", 2, 1000), Line("B", 1, 550)), "s1"),
        Returned("T1", "r1", 3600.0, (("A", 1),)),
        CategoryKnown("A", "grocery"),
        Opened("T2", "C1", "web", 7200.0, (Line("A", 1, 2000), Line("C", 3, 100)), "s2"),
        Fulfilled("T2", "f1", 9000.0, "C", 3),
        Cancelled("T2", "c1", 9500.0, "A", None),
        Opened("T3", "C1", "pos", 10_000.0, (Line("B", 4, 550),), "s3"),
        Fulfilled("T3", "f3", 10_100.0, "B", 4),
    ]


def _run(batches: list[list[ToBook]]) -> tuple[int, tuple[int, int]]:
    """The member's version and (available, pending) after the book and the ledger took `batches`."""
    book = TxnBook(RULES, retention_s=90 * DAY)
    ledger = MemberLedger(RULES, return_window_s=DAY, expiry_s=365 * DAY, tier_window_s=365 * DAY)
    for batch in batches:
        ledger.apply(book.apply(batch))
    ledger.apply([Tick(3 * DAY), RedeemAsked("C1", "R1", 10, "web", 3 * DAY, "q1")])
    member = ledger.members["C1"]
    return member.version, member.balances()


def _split(events: list[ToBook], rng: random.Random) -> list[list[ToBook]]:
    cuts = sorted(rng.sample(range(1, len(events)), rng.randint(0, len(events) - 1)))
    return [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)]


def test_any_batching_and_any_order_of_the_same_events_ends_on_one_version_and_balance() -> None:
    events = _events()
    one_by_one = _run([[e] for e in events])
    assert one_by_one[0] > len(events)  # events, maturities and the redemption all count
    rng = random.Random(7)
    for _ in range(200):
        shuffled = events[:]
        rng.shuffle(shuffled)
        assert _run(_split(shuffled, rng)) == one_by_one
    assert _run([events]) == one_by_one  # the whole replay folded into one batch


def test_a_fulfilment_moves_the_version_but_writes_no_entry() -> None:
    book = TxnBook(RULES, retention_s=90 * DAY)
    ledger = MemberLedger(RULES, return_window_s=DAY, expiry_s=365 * DAY, tier_window_s=365 * DAY)
    first = ledger.apply(book.apply(_events()[3:4]))
    assert [e.kind for e in first.entries] == ["earn"]
    version = ledger.members["C1"].version
    out = ledger.apply(book.apply(_events()[4:5]))
    assert out.entries == [] and out.changed == [] and ledger.members["C1"].version == version + 1
