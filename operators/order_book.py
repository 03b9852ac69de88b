"""The lines of online orders, so that one `order_cancel` can release a whole order.

An `order_cancel` without `sku` names only an order; the stock ledgers are
kept per SKU. The book remembers, per order, which SKUs each `purchase`
reserved where, and turns every cancel into one movement per line it
reaches, for the SKU-keyed ledgers (`operators.stock_ledger`) to apply.
"""

from __future__ import annotations

from collections import deque

import msgspec

from events.models import OrderCancel, Purchase
from operators.movements import Move, StockMovement, purchase_movements

_CANCEL = Move.CANCEL  # hoisted: enum attribute lookups are slow on the hot path


class _Cancel(msgspec.Struct, array_like=True, gc=False):
    """One cancel of the order: whole (`sku` None) or of a line (`qty` 0: all that remains of it)."""

    event_id: str
    ts: float
    sku: str | None
    location_id: str | None
    qty: int
    sent: bool  # its movement went out (a line cancel is sent once; a whole one again for each purchase)


class _Order(msgspec.Struct, array_like=True, gc=False):
    """What the book knows of one order: its purchases' lines by location, and its cancels."""

    lines: dict[str, list[str]]  # location -> the SKUs purchases reserved there, first seen first
    purchases: list[str]  # event ids of the purchases taken (a redelivery changes nothing)
    cancels: list[_Cancel]
    last_ts: float


class _Arrival(msgspec.Struct, array_like=True, gc=False):
    ts: float
    order_id: str


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(tuple[float, float, int, dict[str, _Order], list[_Arrival]])


class OrderBook:
    """Turns the purchases and cancels of online orders into stock movements, whole-order cancels included.

    A `purchase` reserves each of its lines at its fulfilment location (as it
    always did), and the book notes which SKUs those were. A whole-order
    cancel becomes a cancel of each noted line; one that arrives before its
    purchase is held, and sent with the purchase. A line cancel names its
    SKU; its location is its own `location_id`, else the purchase's, so it
    waits for the purchase only without one. Movements carry the cancel's
    `event_id`, the ledgers' dedup key within a SKU; a cancel or purchase the
    book has seen changes nothing. The result is the same whatever order the
    events arrive in: the ledgers' order lines are order-free (a cancel
    before its purchase ends as one after it).

    Orders are forgotten `retention_s` of event time after their last event;
    a cancel whose purchase never came by then released nothing, and
    `unmatched_cancels` counts it.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> from events.models import LineItem, OnlinePayment
    >>> at = datetime(2026, 1, 1, tzinfo=UTC)
    >>> cancel = OrderCancel(event_id="c1", ts=at, schema_version=1, order_id="O1")
    >>> purchase = Purchase(event_id="p1", ts=at, schema_version=1, session_id="s1", channel="web", order_id="O1",
    ...                     items=[LineItem("A", 2, 1.0), LineItem("B", 1, 1.0)], total=3.0, currency="EUR",
    ...                     fulfilment_location_id="W1", payment=OnlinePayment(method="card"))
    >>> book = OrderBook()
    >>> book.apply(cancel)  # before its purchase: held
    []
    >>> moves = book.apply(purchase)
    >>> [(m.sku, m.location_id, m.kind.name, m.event_id) for m in moves]  # doctest: +NORMALIZE_WHITESPACE
    [('A', 'W1', 'RESERVE', 'p1'), ('B', 'W1', 'RESERVE', 'p1'),
     ('A', 'W1', 'CANCEL', 'c1'), ('B', 'W1', 'CANCEL', 'c1')]
    >>> book.apply(cancel), book.apply(purchase)  # redelivered
    ([], [])
    """

    def __init__(self, retention_s: float = 7 * 86_400.0) -> None:
        self.retention_s = retention_s
        self._orders: dict[str, _Order] = {}
        self._arrivals: deque[_Arrival] = deque()  # (first event time, order id), oldest first
        self._newest = float("-inf")
        self.unmatched_cancels = 0

    def apply(self, event: Purchase | OrderCancel) -> list[StockMovement]:
        """The movements `event` causes now: its own, and those of cancels that waited for it."""
        ts = event.ts.timestamp()
        order = self._orders.get(event.order_id)
        if order is None:
            order = self._orders[event.order_id] = _Order({}, [], [], ts)
            self._arrivals.append(_Arrival(ts, event.order_id))
        if ts > order.last_ts:
            order.last_ts = ts
        is_purchase = type(event) is Purchase
        moves = self._purchase(order, event, ts) if is_purchase else self._cancel(order, event)  # type: ignore[arg-type]
        if ts > self._newest:
            self._newest = ts
            self._age_out(ts - self.retention_s)
        return moves

    def _purchase(self, order: _Order, purchase: Purchase, ts: float) -> list[StockMovement]:
        if purchase.event_id in order.purchases:
            return []
        order.purchases.append(purchase.event_id)
        reserves = purchase_movements(purchase, ts)
        location_id = purchase.fulfilment_location_id
        skus = order.lines.setdefault(location_id, [])
        for move in reserves:
            if move.sku not in skus:
                skus.append(move.sku)
        first_location = next(iter(order.lines))
        moves = list(reserves)
        for cancel in order.cancels:
            if cancel.sku is None:  # a whole-order cancel reaches this purchase's lines too
                moves += [self._move(move.sku, location_id, purchase.order_id, cancel) for move in reserves]
                cancel.sent = True
            elif not cancel.sent:
                moves.append(self._move(cancel.sku, first_location, purchase.order_id, cancel))
                cancel.sent = True
        return moves

    def _cancel(self, order: _Order, event: OrderCancel) -> list[StockMovement]:
        if any(cancel.event_id == event.event_id for cancel in order.cancels):
            return []
        cancel = _Cancel(event.event_id, event.ts.timestamp(), event.sku, event.location_id, event.qty or 0, False)
        order.cancels.append(cancel)
        if cancel.sku is None:
            moves = [
                self._move(sku, location_id, event.order_id, cancel)
                for location_id, skus in order.lines.items()
                for sku in skus
            ]
            cancel.sent = bool(moves)
            return moves
        location_id = cancel.location_id or next(iter(order.lines), None)
        if location_id is None:
            return []  # the line's location comes with the purchase
        cancel.sent = True
        return [self._move(cancel.sku, location_id, event.order_id, cancel)]

    @staticmethod
    def _move(sku: str, location_id: str, order_id: str, cancel: _Cancel) -> StockMovement:
        return StockMovement(sku, location_id, _CANCEL, cancel.qty if cancel.sku is not None else 0, cancel.ts,
                             cancel.event_id, order_id)  # fmt: skip

    def _age_out(self, horizon: float) -> None:
        arrivals, orders = self._arrivals, self._orders
        while arrivals and arrivals[0].ts < horizon:
            arrival = arrivals.popleft()
            order = orders.get(arrival.order_id)
            if order is None:
                continue
            if order.last_ts >= horizon:
                arrivals.append(_Arrival(order.last_ts, arrival.order_id))  # still in use: looked at again later
                continue
            del orders[arrival.order_id]
            self.unmatched_cancels += sum(1 for cancel in order.cancels if not cancel.sent)

    def to_bytes(self) -> bytes:
        """The book as compact bytes, for the flow's snapshots (`from_bytes` reverses it).

        >>> book = OrderBook(3_600.0)
        >>> vars(OrderBook.from_bytes(book.to_bytes())) == vars(book)
        True
        """
        return _ENCODER.encode((self.retention_s, self._newest, self.unmatched_cancels, self._orders,
                                list(self._arrivals)))  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes) -> OrderBook:
        retention_s, newest, unmatched, orders, arrivals = _DECODER.decode(data)
        book = cls(retention_s)
        book._newest, book.unmatched_cancels, book._orders = newest, unmatched, orders
        book._arrivals = deque(arrivals)
        return book

    def __len__(self) -> int:
        return len(self._orders)
