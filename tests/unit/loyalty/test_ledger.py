"""The member ledger: maturity, expiry, redemptions never below zero, late reversals of spent points."""

from __future__ import annotations

from operators.loyalty.ledger import MemberLedger
from operators.loyalty.records import RedeemAsked, Tick, TxnPoints
from operators.loyalty.rules import EarnRules

DAY = 86_400.0


def ledger() -> MemberLedger:
    return MemberLedger(EarnRules("t", {"pos": 1000}), return_window_s=30 * DAY, expiry_s=365 * DAY,
                        tier_window_s=365 * DAY)  # fmt: skip


def earn(txn: str, ts: float, points: int, rev: int = 1) -> TxnPoints:
    return TxnPoints("C1", txn, rev, ts, points, points * 100, ts, f"e-{txn}-{rev}")


def test_a_reversal_of_spent_points_takes_them_from_other_lots_and_records_what_it_cannot() -> None:
    book = ledger()
    book.apply([earn("T1", 0.0, 100), earn("T2", DAY, 30), Tick(40 * DAY)])
    out = book.apply([RedeemAsked("C1", "R1", 110, "web", 40 * DAY, "r1")])
    assert [d.status for d in out.decisions] == ["accepted"]
    member = book.members["C1"]
    assert member.balances() == (20, 0)
    # T1 (100 points, all spent) is returned in full, late: 20 come back from T2, 80 cannot.
    out = book.apply([earn("T1", 0.0, 0, rev=2)])
    assert member.balances() == (0, 0)
    assert member.unrecovered == 80
    assert [(e.kind, e.points, e.unrecovered) for e in out.entries] == [("adjust", -20, 80)]


def test_two_redemptions_of_the_whole_balance_one_passes() -> None:
    book = ledger()
    book.apply([earn("T1", 0.0, 50), Tick(31 * DAY)])
    first, second = RedeemAsked("C1", "R1", 50, "web", 31 * DAY, "a"), RedeemAsked("C1", "R2", 50, "pos", 31 * DAY, "b")
    out = book.apply([first, second, first])
    assert [(d.redemption_id, d.status) for d in out.decisions] == [("R1", "accepted"), ("R2", "rejected")]
    assert book.members["C1"].balances() == (0, 0)


def test_unspent_points_expire_in_due_order_and_a_late_lot_settles_at_once() -> None:
    book = ledger()
    out = book.apply([earn("T1", 0.0, 10), earn("T2", 100 * DAY, 5)])  # T2's time matures T1 (day 30)
    assert [(e.kind, e.ref) for e in out.entries] == [("earn", "T1"), ("mature", "T1"), ("earn", "T2")]
    out = book.apply([Tick(396 * DAY)])  # T2 matured at day 130; T1 expired at day 395
    assert [(e.kind, e.ref, e.points) for e in out.entries] == [("mature", "T2", 5), ("expire", "T1", -10)]
    out = book.apply([earn("T0", 0.0, 7)])  # published a year late: earned, matured and expired in one go
    assert [(e.kind, e.points) for e in out.entries] == [("earn", 7), ("mature", 7), ("expire", -7)]
    assert book.members["C1"].balances() == (5, 0) and book.members["C1"].expired == 17


def test_a_stale_revision_changes_nothing() -> None:
    book = ledger()
    book.apply([earn("T1", 0.0, 10, rev=2)])
    out = book.apply([earn("T1", 0.0, 99, rev=1)])
    assert out.entries == [] and book.members["C1"].balances() == (0, 10) and book.stats["stale"] == 1
