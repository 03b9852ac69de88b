"""One SKU's stock ledger as the unit of the inventory flow's snapshots: snapshot cost follows what changed.

The flow pauses while it snapshots. When ledgers were held in 64 shards, a
snapshot wrote every ledger of each shard touched in the epoch, so its cost
grew with the SKUs held (a 1M-key catalog re-wrote most of itself every
epoch). Keyed by SKU, Bytewax snapshots only the keys a movement reached in
the epoch, each one ledger's bytes: the cost follows the SKUs that moved, not
the SKUs held (`benchmarks/snapshots.py` measures it at 10k to 1M keys held).

Between its movements a ledger is kept as bytes only: a snapshot encodes it
and lets the object go, and after a restore it stays bytes until its SKU
moves again, so memory holds decoded only the SKUs that moved since the last
snapshot, and a restart decodes nothing up front.
"""

from __future__ import annotations

from collections.abc import Callable

from events.alerts import Alert
from events.dead_letter import DeadLetter
from events.orders import OrderLineState, ReservationState
from events.stock import SkuStock
from operators.movements import StockMovement
from operators.stock_ledger import StockLedger

LedgerRecord = SkuStock | Alert | DeadLetter | OrderLineState | ReservationState


class LedgerUnit:
    """The `StockLedger` of one SKU, decoded while it moves and bytes in between.

    Parameters
    ----------
    new_ledger
        Builds the empty ledger of a SKU seen for the first time.
    packed
        The ledger's bytes, when restored from a snapshot.

    Examples
    --------
    >>> from operators.movements import Move, StockMovement as M
    >>> def new_ledger(sku: str) -> StockLedger:
    ...     return StockLedger(sku, low_stock_threshold=1)
    >>> unit = LedgerUnit(new_ledger)
    >>> out = unit.apply([M("SKU-1", "S1", Move.ON_HAND, 4, 1.0, "e1"), M("SKU-1", "S1", Move.ON_HAND, 4, 1.0, "e1")])
    >>> [(s.sku, s.version, s.locations[0].on_hand) for s in out], unit.duplicates  # the second was redelivered
    ([('SKU-1', 1, 4)], 1)
    >>> restored = LedgerUnit(new_ledger, unit.to_bytes())
    >>> restored.apply([M("SKU-1", "S1", Move.ON_HAND, -1, 2.0, "e3")])[0].locations[0].on_hand
    3
    """

    __slots__ = ("_ledger", "_new_ledger", "_packed", "duplicates")

    def __init__(self, new_ledger: Callable[[str], StockLedger], packed: bytes | None = None) -> None:
        self._new_ledger = new_ledger
        self._packed = packed  # the ledger's bytes while no movement reached it since they were made
        self._ledger: StockLedger | None = None
        self.duplicates = 0  # redelivered movements dropped, since this unit was built or restored

    def apply(self, moves: list[StockMovement]) -> list[LedgerRecord]:
        """Apply `moves` (all of this unit's SKU) in order; their alerts, then, if the SKU changed, its stock
        record and its changed order lines and holds."""
        out: list[LedgerRecord] = []
        if not moves:
            return out
        ledger = self._decoded()
        if ledger is None:
            ledger = self._ledger = self._new_ledger(moves[0].sku)
        self._packed = None  # about to change: the bytes are stale
        version, duplicates = ledger.version, ledger.duplicates
        for move in moves:
            note = ledger.apply(move)
            if note is not None:
                out.append(note)
        self.duplicates += ledger.duplicates - duplicates
        if ledger.version != version:
            out.append(ledger.stock())
            out += ledger.order_updates()
        return out

    def stock(self) -> SkuStock | None:
        """The SKU's stock record as the ledger stands now (decoding it); None before its first movement."""
        ledger = self._decoded()
        return None if ledger is None else ledger.stock()

    def _decoded(self) -> StockLedger | None:
        """The ledger as an object, decoded from its bytes if need be; None before its first movement."""
        if self._ledger is None and self._packed is not None:
            self._ledger = StockLedger.from_bytes(self._packed)
        return self._ledger

    def to_bytes(self) -> bytes:
        """The ledger's bytes for a snapshot; the object is let go until the SKU moves again."""
        if self._packed is None:
            assert self._ledger is not None, "a unit is built with bytes or gets a ledger on its first movement"
            self._packed = self._ledger.to_bytes()
        self._ledger = None
        return self._packed

    @property
    def decoded(self) -> bool:
        """Whether the ledger is held as an object (it moved since the last snapshot)."""
        return self._ledger is not None
