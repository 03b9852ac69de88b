"""The till transactions of one store, so that a void can undo the sale it names."""

from __future__ import annotations

from collections import deque

import msgspec

from events.models import Return, Sale, Void
from operators.movements import Move, StockMovement, qty_by_sku

PosEvent = Sale | Return | Void
"""The till events the journal applies (the registry's `omni.pos` types; tests/unit/events/test_registry.py checks)."""

_ON_HAND = Move.ON_HAND  # hoisted: enum attribute lookups are slow on the hot path


# Structs, not tuples, for what the journal keeps per transaction: a new tuple is tracked by the
# cycle collector until a young collection visits it, and one or two per till event made those
# collections, and the flow's pauses, longer. Both encode as arrays, as the tuples they replaced did.
class _Txn(msgspec.Struct, array_like=True, gc=False):
    store_id: str
    ts: float
    lines: dict[str, int]  # signed qty by SKU


class _Arrival(msgspec.Struct, array_like=True, gc=False):
    ts: float
    txn_id: str
    is_void: bool


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(tuple[float, float, int, dict[str, _Txn], dict[str, str], list[_Arrival]])


class TxnJournal:
    """Turns one store's POS events into stock movements, voids included.

    A `void` names only `original_txn_id`, so the journal remembers each
    transaction's lines. The void's effect is a compensating movement per SKU
    dated at the *original* transaction's `ts`: against a cycle count it
    behaves exactly like the voided sale (counted in or on top of the count
    together), so a voided sale nets to nothing whichever arrives first. A
    void that arrives before its sale is held and applied when the sale comes.
    A second void of the same transaction changes nothing.

    Compensations carry the void's `event_id`; the stock ledger drops
    redelivered movements by that id. A void whose transaction has not
    arrived when it ages out undid nothing; `unmatched_voids` counts those.

    Parameters
    ----------
    retention_s
        Event-time seconds a transaction (or an early void) is remembered.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from events.models import LineItem, PosPayment
    >>> till = dict(schema_version=1, store_id="S1", register_id="R1", cashier_id="C1", currency="EUR")
    >>> sale = Sale(event_id="e1", ts=datetime(2026, 1, 1, tzinfo=UTC), txn_id="T1", total=10.0,
    ...             items=[LineItem("SKU-1", 2, 5.0)], payment=PosPayment(method="cash"), **till)
    >>> void = Void(event_id="e2", ts=datetime(2026, 1, 1, 0, 5, tzinfo=UTC), txn_id="T2",
    ...             original_txn_id="T1", **till)
    >>> journal = TxnJournal()
    >>> [(m.sku, m.qty) for m in journal.apply(void)]  # held until the sale arrives
    []
    >>> [(m.sku, m.qty, m.event_id) for m in journal.apply(sale)]
    [('SKU-1', -2, 'e1'), ('SKU-1', 2, 'e2')]
    """

    def __init__(self, retention_s: float = 86_400.0) -> None:
        self.retention_s = retention_s
        self._txns: dict[str, _Txn] = {}
        self._voids: dict[str, str] = {}  # original_txn_id -> the void's event_id
        self._arrivals: deque[_Arrival] = deque()
        self._newest = float("-inf")
        self.unmatched_voids = 0  # voids aged out before their transaction arrived

    def apply(self, event: PosEvent) -> list[StockMovement]:
        """The movements `event` causes now (possibly none, possibly a held void's too)."""
        ts = event.ts.timestamp()
        moves = self._void(event) if isinstance(event, Void) else self._sale_or_return(event, ts)
        self._age_out(ts)
        return moves

    def _sale_or_return(self, event: Sale | Return, ts: float) -> list[StockMovement]:
        sign = -1 if isinstance(event, Sale) else 1
        lines = {sku: sign * qty for sku, qty in qty_by_sku(event.items).items()}
        if event.txn_id not in self._txns:
            self._arrivals.append(_Arrival(ts, event.txn_id, False))
        self._txns[event.txn_id] = _Txn(event.store_id, ts, lines)
        moves = [StockMovement(sku, event.store_id, _ON_HAND, qty, ts, event.event_id) for sku, qty in lines.items()]
        void_id = self._voids.get(event.txn_id)
        if void_id is not None:
            moves += self._compensations(event.txn_id, void_id)
        return moves

    def _void(self, void: Void) -> list[StockMovement]:
        if void.original_txn_id in self._voids:
            return []
        self._voids[void.original_txn_id] = void.event_id
        self._arrivals.append(_Arrival(void.ts.timestamp(), void.original_txn_id, True))
        if void.original_txn_id in self._txns:
            return self._compensations(void.original_txn_id, void.event_id)
        return []

    def _compensations(self, txn_id: str, void_event_id: str) -> list[StockMovement]:
        txn = self._txns[txn_id]
        store_id, ts = txn.store_id, txn.ts
        return [StockMovement(sku, store_id, _ON_HAND, -qty, ts, void_event_id) for sku, qty in txn.lines.items()]

    def _age_out(self, ts: float) -> None:
        if ts <= self._newest:
            return
        self._newest = ts
        horizon = ts - self.retention_s
        arrivals = self._arrivals
        while arrivals and arrivals[0].ts < horizon:
            arrival = arrivals.popleft()
            txn_id = arrival.txn_id
            if arrival.is_void:
                if self._voids.pop(txn_id, None) is not None and txn_id not in self._txns:
                    self.unmatched_voids += 1  # reported by the flow: a void that undid nothing
            else:
                self._txns.pop(txn_id, None)

    def to_bytes(self) -> bytes:
        """The journal as compact bytes, for the flow's snapshots (`from_bytes` reverses it).

        The flow pauses while it snapshots, and a store's journal holds every
        transaction of the retention window: MessagePack of the plain
        containers encodes in C, about 5x faster than pickle of the same.

        >>> from datetime import datetime, UTC
        >>> from events.models import LineItem, PosPayment, Sale
        >>> sale = Sale(event_id="e1", ts=datetime(2026, 1, 1, tzinfo=UTC), txn_id="T1", total=10.0,
        ...             items=[LineItem("SKU-1", 2, 5.0)], payment=PosPayment(method="cash"), schema_version=1,
        ...             store_id="S1", register_id="R1", cashier_id="C1", currency="EUR")
        >>> journal = TxnJournal()
        >>> _ = journal.apply(sale)
        >>> vars(TxnJournal.from_bytes(journal.to_bytes())) == vars(journal)
        True
        """
        return _ENCODER.encode((self.retention_s, self._newest, self.unmatched_voids, self._txns, self._voids,
                                list(self._arrivals)))  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes) -> TxnJournal:
        retention_s, newest, unmatched_voids, txns, voids, arrivals = _DECODER.decode(data)
        journal = cls(retention_s)
        journal._newest, journal.unmatched_voids, journal._voids = newest, unmatched_voids, voids
        journal._txns = txns
        journal._arrivals = deque(arrivals)
        return journal

    def __len__(self) -> int:
        return len(self._txns) + len(self._voids)
