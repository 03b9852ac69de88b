"""The stock ledgers of one shard of SKUs, snapshotted incrementally."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from events.alerts import Alert
from events.dead_letter import DeadLetter
from events.orders import OrderLineState, ReservationState
from events.stock import SkuStock
from operators.movements import StockMovement
from operators.stock_ledger import StockLedger

LedgerRecord = SkuStock | Alert | DeadLetter | OrderLineState | ReservationState
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(dict[str, bytes])


class LedgerShard:
    """The `StockLedger`s of the SKUs of one shard, with each ledger's bytes kept until it changes.

    The flow pauses while it snapshots, and a snapshot used to re-encode
    every ledger touched in the epoch whole: an hour of remembered event ids,
    the movements a late cycle count needs, open order lines. Here a ledger's
    bytes are kept from one snapshot to the next until a movement reaches
    it, so a snapshot encodes only the ledgers touched since the last one; and
    after a restore a ledger stays bytes until its SKU moves again, so a
    restart does not decode the whole catalog up front.

    Parameters
    ----------
    new_ledger
        Builds the empty ledger of a SKU seen for the first time.

    Examples
    --------
    >>> from operators.movements import Move, StockMovement as M
    >>> def new_ledger(sku: str) -> StockLedger:
    ...     return StockLedger(sku, low_stock_threshold=1)
    >>> shard = LedgerShard(new_ledger)
    >>> out = shard.apply([M("SKU-1", "S1", Move.ON_HAND, 4, 1.0, "e1"), M("SKU-2", "S1", Move.ON_HAND, 2, 1.0, "e2"),
    ...                    M("SKU-1", "S1", Move.ON_HAND, 4, 1.0, "e1")])  # the last one is redelivered
    >>> [(s.sku, s.version, s.locations[0].on_hand) for s in out], shard.duplicates
    ([('SKU-1', 1, 4), ('SKU-2', 1, 2)], 1)
    >>> restored = LedgerShard.from_bytes(shard.to_bytes(), new_ledger)
    >>> restored.apply([M("SKU-1", "S1", Move.ON_HAND, -1, 2.0, "e3")])[0].locations[0].on_hand
    3
    """

    def __init__(self, new_ledger: Callable[[str], StockLedger]) -> None:
        self._new_ledger = new_ledger
        self._ledgers: dict[str, StockLedger] = {}  # decoded ledgers
        self._packed: dict[str, bytes] = {}  # the current bytes of each ledger unchanged since the last snapshot
        self.duplicates = 0  # redelivered movements dropped, since this shard was built or restored

    def apply(self, moves: list[StockMovement]) -> list[LedgerRecord]:
        """Apply `moves` in order; the alerts and dead letters they raise, then per changed SKU its stock
        record and its changed order lines and holds."""
        out: list[LedgerRecord] = []
        touched: dict[str, tuple[StockLedger, int, int]] = {}  # sku -> (ledger, version, duplicates) before the batch
        for move in moves:
            sku = move.sku
            held = touched.get(sku)
            if held is None:
                ledger = self._ledger(sku)
                touched[sku] = (ledger, ledger.version, ledger.duplicates)
                self._packed.pop(sku, None)  # about to change: its kept bytes are stale
            else:
                ledger = held[0]
            note = ledger.apply(move)
            if note is not None:
                out.append(note)
        for ledger, version, duplicates in touched.values():
            self.duplicates += ledger.duplicates - duplicates
            if ledger.version != version:
                out.append(ledger.stock())
                out += ledger.order_updates()
        return out

    def to_bytes(self) -> bytes:
        """Every ledger's bytes: kept ones as they are, changed ones encoded afresh (and kept).

        A ledger no movement reached since the previous snapshot is let go as
        an object and kept as bytes only, so memory
        holds decoded only the SKUs that moved in the last epoch; the next
        movement of the SKU decodes it again.
        """
        packed, ledgers = self._packed, self._ledgers
        for sku in [sku for sku in ledgers if sku in packed]:
            del ledgers[sku]
        for sku, ledger in ledgers.items():
            if sku not in packed:
                packed[sku] = ledger.to_bytes()
        return _ENCODER.encode(packed)

    @property
    def decoded(self) -> int:
        """How many ledgers are held as objects (the rest as bytes only)."""
        return len(self._ledgers)

    @classmethod
    def from_bytes(cls, data: bytes, new_ledger: Callable[[str], StockLedger]) -> LedgerShard:
        shard = cls(new_ledger)
        shard._packed = _DECODER.decode(data)
        return shard

    def __len__(self) -> int:
        # Counted without a set of every SKU: the flow asks at each snapshot, when the decoded
        # ledgers (few: those moved in the last epoch) are all packed too.
        packed = self._packed
        return len(packed) + sum(1 for sku in self._ledgers if sku not in packed)

    def _ledger(self, sku: str) -> StockLedger:
        ledger = self._ledgers.get(sku)
        if ledger is None:
            packed = self._packed.get(sku)
            ledger = StockLedger.from_bytes(packed) if packed is not None else self._new_ledger(sku)
            self._ledgers[sku] = ledger
        return ledger
