"""Payments awaiting their fraud label: what each was scored with, kept compactly up to the label horizon.

Banks learn that a payment was fraud weeks after it happened (chargebacks and customer claims
come back within about 120 days). To learn from a label, the scorer needs the model input the
payment had *when it was scored*, not features recomputed later with hindsight, so every scored
payment waits here until its label arrives or the horizon passes.

At 15k payments/s a 120-day horizon is far more payments than any memory holds, so the layout
is columnar and bounded: one block per event-time day, each a few sorted numpy runs of
- a 64-bit hash of the payment id (8 bytes; the id itself is never kept),
- seconds since the block's start (4 bytes, to tell a label dated before its payment),
- the model input as float16 (2 bytes per input: the inputs are scaled to about [0, 1], where
  half precision is within 2.5e-4, far below what moves a logistic model's weights),
- a state byte (open, labelled, presumed genuine).
No Python object per payment: `bytes_per_payment` is 13 + 2 x inputs (95 bytes with the scorer's
41 inputs, so 10M pending payments take about 0.95 GB), and a block pickles as a handful of arrays.
A run holds at most `RUN_ROWS` rows: merging two runs allocates the merged one before the two
are freed, so unbounded runs made the store's peak twice its size (docs/fraud.md, the soak).

A payment no label has claimed is learned as genuine only once its whole day is `maturity_s`
old, never earlier; it is forgotten at `horizon_s`. A label that finds no payment waits (its
payment may be read later, from a lagging partition) until event time is `lateness_s` past
the label; then it is handed back as unknown, for the flow to dead-letter with a reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Keys = npt.NDArray[np.uint64]
Inputs = npt.NDArray[np.float16]
INPUT_DTYPE = np.float16
"""How model inputs are kept (runs of snapshots taken before, float32, load and merge as they are)."""

OPEN, LABELLED, PRESUMED = 0, 1, 2
"""Row states: waiting for a label; labelled (learned once); presumed genuine at maturity (learned once)."""
DAY_S = 86_400.0
RUN_ROWS = 1 << 18
"""Rows of one sorted run at most (~45 MB with 40 inputs): what a merge holds twice, and what the
bound on pending payments drops at a time."""


def payment_keys(payment_ids: Sequence[str]) -> Keys:
    """Stable 64-bit hashes of payment ids (the same in every process and after a restart).

    Two ids of 10M pending share a hash with probability about 3e-6 (birthday bound on 64 bits).
    """
    blake = hashlib.blake2b
    digests = b"".join(blake(payment_id.encode(), digest_size=8).digest() for payment_id in payment_ids)
    return np.frombuffer(digests, dtype=np.uint64).copy()


class _Run(NamedTuple):
    """Rows of one block sorted by key: parallel arrays."""

    keys: Keys
    offsets: npt.NDArray[np.uint32]
    inputs: Inputs
    state: npt.NDArray[np.uint8]


def _sorted_run(keys: Keys, offsets: npt.NDArray[np.uint32], inputs: Inputs,
                state: npt.NDArray[np.uint8]) -> _Run:  # fmt: skip
    order = np.argsort(keys, kind="stable")
    return _Run(keys[order], offsets[order], inputs[order], state[order])


def _merge(runs: Sequence[_Run]) -> _Run:
    """The runs as one sorted run, equal to sorting their concatenation (stable: earlier runs first among equals).

    Each row is written once, straight to its sorted place: concatenating every column and then taking it in
    sorted order held two copies of the whole block besides the runs themselves, and a day's block at the
    pending cap is hundreds of MB (the fraud soak's peaks: docs/fraud.md).
    """
    keys = np.concatenate([r.keys for r in runs])
    order = np.argsort(keys, kind="stable")
    place = np.empty_like(order)
    place[order] = np.arange(len(order))
    rows, first = len(keys), runs[0]
    offsets = np.empty(rows, dtype=first.offsets.dtype)
    inputs = np.empty((rows, *first.inputs.shape[1:]), dtype=first.inputs.dtype)
    state = np.empty(rows, dtype=first.state.dtype)
    at = 0
    for run in runs:
        to = place[at : at + len(run.keys)]
        offsets[to], inputs[to], state[to] = run.offsets, run.inputs, run.state
        at += len(run.keys)
    return _Run(keys[order], offsets, inputs, state)


class _DayBlock:
    """One event-time day of payments: sorted runs, merged like a log-structured tree (few runs, amortised).

    Only neighbouring runs merge, so the runs stay in arrival order (the first is the oldest), and
    never past `run_rows` rows: a day at the pending bound is a few dozen runs, not one.
    """

    run_rows = RUN_ROWS  # a block pickled before the bound existed has no attribute of its own
    compacted = False  # nor this one: compacted (again) once

    def __init__(self, start: float, run_rows: int = RUN_ROWS) -> None:
        self.start = start
        self.run_rows = run_rows
        self.compacted = False
        self.runs: list[_Run] = []
        self.open = 0
        self.presumed = False

    def __len__(self) -> int:
        return sum(len(r.keys) for r in self.runs)

    @property
    def nbytes(self) -> int:
        return sum(r.keys.nbytes + r.offsets.nbytes + r.inputs.nbytes + r.state.nbytes for r in self.runs)

    def add(self, keys: Keys, ts: FloatArray, inputs: Inputs) -> None:
        offsets = np.clip(ts - self.start, 0, DAY_S * 10).astype(np.uint32)
        runs = self.runs
        runs.append(_sorted_run(keys, offsets, inputs, np.zeros(len(keys), dtype=np.uint8)))
        self.open += len(keys)
        self.compacted = False
        while (len(runs) > 1 and len(runs[-2].keys) <= 2 * len(runs[-1].keys)
               and len(runs[-2].keys) + len(runs[-1].keys) <= self.run_rows):  # fmt: skip
            runs[-2:] = [_merge(runs[-2:])]

    def compact(self) -> None:
        """Neighbouring runs merged up to `run_rows`: done once the day is over, so later lookups cost few searches.

        It is asked for on every batch for every day that is over (`PendingPayments.mature`): after the
        first time, until a row is added, it does nothing.
        """
        if self.compacted:
            return
        self.compacted = True
        compacted: list[_Run] = []
        group: list[_Run] = []
        rows = 0
        for run in self.runs:
            if group and rows + len(run.keys) > self.run_rows:
                compacted.append(_merge(group) if len(group) > 1 else group[0])
                group, rows = [], 0
            group.append(run)
            rows += len(run.keys)
        if group:
            compacted.append(_merge(group) if len(group) > 1 else group[0])
        self.runs = compacted

    def drop_oldest_run(self) -> tuple[int, int]:
        """Forget the oldest run: (its rows, how many of them were still open)."""
        run = self.runs.pop(0)
        still_open = int(np.count_nonzero(run.state == OPEN))
        self.open -= still_open
        return len(run.keys), still_open

    def find(self, keys: Keys) -> list[tuple[int, int]]:
        """(index in `keys`, run * 2**32 + row) of the keys found in this block."""
        found: list[tuple[int, int]] = []
        for r, run in enumerate(self.runs):
            if not len(run.keys):
                continue
            at = np.searchsorted(run.keys, keys)
            at_clipped = np.minimum(at, len(run.keys) - 1)
            hits = np.flatnonzero(run.keys[at_clipped] == keys)
            found += [(int(i), (r << 32) | int(at_clipped[i])) for i in hits]
        return found

    def row(self, ref: int) -> tuple[_Run, int]:
        return self.runs[ref >> 32], ref & 0xFFFFFFFF

    def mature(self) -> Inputs:
        """The open rows' inputs, now presumed genuine (marked so: a fraud label can still correct them)."""
        parts = []
        for run in self.runs:
            waiting = run.state == OPEN
            parts.append(run.inputs[waiting])
            run.state[waiting] = PRESUMED
        self.open, self.presumed = 0, True
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=INPUT_DTYPE)


def _add_by_day(blocks: dict[int, _DayBlock], keys: Keys, times: FloatArray, inputs: Inputs,
                run_rows: int) -> None:  # fmt: skip
    """Add rows to the blocks of their event-time days (made when missing), in day order."""
    days = np.floor(times / DAY_S).astype(np.int64)
    first = int(days[0])
    if (days == first).all():  # nearly every batch: one day, no split (a shard's batch is tens of rows)
        block = blocks.get(first)
        if block is None:
            block = blocks[first] = _DayBlock(first * DAY_S, run_rows)
        block.add(keys, times, inputs)
        return
    for day in np.unique(days).tolist():
        rows = np.flatnonzero(days == day)
        block = blocks.get(day)
        if block is None:
            block = blocks[day] = _DayBlock(day * DAY_S, run_rows)
        block.add(keys[rows], times[rows], inputs[rows])


def _drop_oldest(blocks: dict[int, _DayBlock]) -> tuple[int, int]:
    """Forget the oldest run of the oldest day (the day too, once empty): (rows, open rows) forgotten."""
    day = min(blocks)
    block = blocks[day]
    dropped = block.drop_oldest_run() if block.runs else (0, 0)
    if not block.runs:
        del blocks[day]
    return dropped


class WaitingLabel(NamedTuple):
    key: int
    ts: float
    is_fraud: bool
    label: object
    """What the caller handed in with it (the flow's label record), handed back if it stays unknown."""


class Matched(NamedTuple):
    """Labels joined to the inputs their payments were scored with, ready to learn."""

    inputs: FloatArray
    is_fraud: list[bool]
    corrections: int
    """Fraud labels for payments already presumed genuine at maturity (learned as fraud now)."""
    refused: list[WaitingLabel]
    """Labels dated before their payment: not learned, for the flow to dead-letter."""


class PendingPayments:
    """Scored payments' model inputs by payment id, until their label arrives or the horizon passes.

    Parameters
    ----------
    horizon_s
        Event time a payment waits for its label at most (120 days: the usual chargeback window).
    maturity_s
        Event time after which an unlabelled payment is learned as genuine (None: the horizon).
        Maturity is judged per day block: a payment is presumed genuine when its whole day is
        `maturity_s` old, so never before its own `maturity_s`.
    max_payments
        Payments kept at most; past it the oldest are forgotten unlearned, a run (at most
        `run_rows`) at a time (counted in `dropped`).
    lateness_s
        Event time a label for a payment not seen (yet) waits for it before it is handed back
        as unknown.
    max_waiting
        Labels waiting for their payment at most; past it the oldest are handed back as unknown.
    run_rows
        Rows of one sorted run at most (`RUN_ROWS`; smaller in tests).

    Examples
    --------
    >>> pending = PendingPayments(horizon_s=10 * DAY_S, maturity_s=2 * DAY_S)
    >>> _ = pending.remember_many(["P1", "P2"], [100.0, 200.0], np.asarray([[0.5, 1.0], [0.0, 0.0]]))
    >>> matched = pending.label_many(["P1"], [DAY_S], [True], ["label of P1"])
    >>> matched.inputs.tolist(), matched.is_fraud
    ([[0.5, 1.0]], [True])
    >>> pending.mature(now=2 * DAY_S).shape[0]  # P2's day is not two days old yet
    0
    >>> pending.mature(now=3 * DAY_S).tolist()  # now it is: P2 is presumed genuine
    [[0.0, 0.0]]
    >>> pending.bytes_per_payment
    17
    """

    run_rows = RUN_ROWS  # a store pickled before the bound existed has no attribute of its own

    def __init__(
        self,
        horizon_s: float = 120 * DAY_S,
        maturity_s: float | None = None,
        max_payments: int = 2_500_000,
        lateness_s: float = DAY_S,
        max_waiting: int = 100_000,
        run_rows: int = RUN_ROWS,
    ) -> None:
        maturity = horizon_s if maturity_s is None else maturity_s
        if maturity > horizon_s:
            raise ValueError(f"maturity ({maturity} s) must not be past the label horizon ({horizon_s} s)")
        self.horizon_s = horizon_s
        self.maturity_s = maturity
        self.max_payments = max_payments
        self.lateness_s = lateness_s
        self.max_waiting = max_waiting
        self.run_rows = run_rows
        self.blocks: dict[int, _DayBlock] = {}
        self.waiting: dict[int, WaitingLabel] = {}
        self.width = 0
        self.rows = 0
        self.dropped = 0
        self.duplicate_labels = 0

    def __len__(self) -> int:
        """Payments still waiting for a label (neither labelled nor presumed genuine)."""
        return sum(block.open for block in self.blocks.values())

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays of every payment kept (labelled and presumed ones too, until the horizon)."""
        return sum(block.nbytes for block in self.blocks.values())

    @property
    def bytes_per_payment(self) -> int:
        """What one more pending payment costs: its hash, time, inputs and state."""
        return 8 + 4 + np.dtype(INPUT_DTYPE).itemsize * self.width + 1

    def remember_many(self, payment_ids: Sequence[str], ts: Sequence[float], model_inputs: FloatArray) -> Matched:
        """Keep the inputs a batch of payments was scored with; returns labels that were waiting for them."""
        if not len(payment_ids):
            return Matched(np.zeros((0, self.width)), [], 0, [])
        inputs = np.asarray(model_inputs, dtype=INPUT_DTYPE)
        self.width = inputs.shape[1]
        keys = payment_keys(payment_ids)
        times = np.asarray(ts, dtype=np.float64)
        _add_by_day(self.blocks, keys, times, inputs, self.run_rows)
        self.rows += len(keys)
        while self.rows > self.max_payments and self.blocks:
            rows, still_open = _drop_oldest(self.blocks)
            self.rows -= rows
            self.dropped += still_open
        if not self.waiting:
            return Matched(np.zeros((0, self.width)), [], 0, [])
        # Dict lookups, not `np.isin` against every waiting key: a batch holds tens of payments, the
        # waiting labels may be thousands, and isin would sort them all each batch.
        waiting = self.waiting
        return self._join([waiting.pop(k) for k in keys.tolist() if k in waiting])

    def label_many(self, payment_ids: Sequence[str], ts: Sequence[float], is_fraud: Sequence[bool],
                   labels: Sequence[object]) -> Matched:  # fmt: skip
        """Join labels to their payments' inputs (each payment learns from one label; repeats are counted).

        Labels whose payment is not here wait for it (`lateness_s`); `labels` are the caller's
        records, handed back by `expire` if the payment never comes.
        """
        keys = payment_keys(payment_ids)
        waiting = [WaitingLabel(int(k), t, y, record)
                   for k, t, y, record in zip(keys.tolist(), ts, is_fraud, labels, strict=True)]  # fmt: skip
        return self._join(waiting)

    def _join(self, labels: list[WaitingLabel]) -> Matched:
        inputs: list[Inputs] = []
        values: list[bool] = []
        refused: list[WaitingLabel] = []
        corrections = 0
        unfound = list(range(len(labels)))
        for block in self.blocks.values():
            if not unfound:
                break
            keys = np.asarray([labels[i].key for i in unfound], dtype=np.uint64)
            taken: set[int] = set()
            for at, ref in block.find(keys):
                if at in taken:
                    continue  # the same id scored twice: the first input found learns
                taken.add(at)
                label = labels[unfound[at]]
                run, row = block.row(ref)
                state = int(run.state[row])
                if label.ts < block.start + float(run.offsets[row]) - 1.0:
                    refused.append(label)  # dated before its payment
                elif state == LABELLED or (state == PRESUMED and not label.is_fraud):
                    self.duplicate_labels += 1  # learned once already: a repeat, or genuine as presumed
                else:
                    if state == PRESUMED:
                        corrections += 1
                    else:
                        block.open -= 1
                    run.state[row] = LABELLED
                    inputs.append(run.inputs[row])
                    values.append(label.is_fraud)
            unfound = [i for j, i in enumerate(unfound) if j not in taken]
        for i in unfound:
            label = labels[i]
            self.waiting.pop(label.key, None)  # a newer label for the same payment replaces the older one
            self.waiting[label.key] = label
        matrix = np.asarray(inputs, dtype=np.float64) if inputs else np.zeros((0, self.width))
        return Matched(matrix, values, corrections, refused)

    def mature(self, now: float) -> FloatArray:
        """Inputs of the payments presumed genuine at event time `now` (whole days `maturity_s` old), once each.

        Days past the horizon are forgotten (with the labels they could still have matched).
        """
        parts: list[Inputs] = []
        for day, block in sorted(self.blocks.items()):
            end = block.start + DAY_S
            if now < end + self.maturity_s:
                if now >= end + 3600.0:
                    block.compact()  # the day is over: few runs for its lookups from now on
                continue
            if not block.presumed:
                parts.append(block.mature())
            if now >= end + self.horizon_s:
                self.rows -= len(self.blocks.pop(day))
        parts = [p for p in parts if len(p)]
        if not parts:
            return np.zeros((0, self.width))
        return np.concatenate(parts).astype(np.float64)

    def expire(self, now: float) -> list[WaitingLabel]:
        """Labels whose payment has not come `lateness_s` after them (or over `max_waiting`): unknown payments."""
        gone = [w for w in self.waiting.values() if now >= w.ts + self.lateness_s]
        for w in gone:
            del self.waiting[w.key]
        while len(self.waiting) > self.max_waiting:
            gone.append(self.waiting.pop(next(iter(self.waiting))))
        return gone


class PaymentDirectory:
    """Which store each payment of the label horizon was made at, so its label reaches the store's fraud rate.

    Labels name a payment, not a store. Keyed like the scorer (by payment id), this remembers
    per payment a 64-bit id hash, its time and the store's number (the store ids are interned
    once per shard): 16 bytes a payment, in day blocks forgotten at the horizon.

    Examples
    --------
    >>> directory = PaymentDirectory(horizon_s=30 * DAY_S)
    >>> directory.remember_many(["T1", "T2"], [100.0, 200.0], ["STORE-7", "STORE-9"])
    >>> directory.find_many(["T2", "T404"])
    [('STORE-9', 200.0), None]
    >>> directory.forget(now=32 * DAY_S)
    >>> directory.find_many(["T2"])
    [None]
    """

    run_rows = RUN_ROWS  # a directory pickled before the bound existed has no attribute of its own

    def __init__(self, horizon_s: float = 120 * DAY_S, max_payments: int = 10_000_000,
                 run_rows: int = RUN_ROWS) -> None:  # fmt: skip
        self.horizon_s = horizon_s
        self.max_payments = max_payments
        self.run_rows = run_rows
        self.blocks: dict[int, _DayBlock] = {}
        self.stores: list[str] = []
        self._codes: dict[str, int] = {}
        self.rows = 0

    def __len__(self) -> int:
        return self.rows

    def remember_many(self, payment_ids: Sequence[str], ts: Sequence[float], store_ids: Sequence[str]) -> None:
        if not len(payment_ids):
            return
        codes, stores = self._codes, self.stores
        numbers = []
        for store in store_ids:
            code = codes.get(store)
            if code is None:
                code = codes[store] = len(stores)
                stores.append(store)
            numbers.append(code)
        keys = payment_keys(payment_ids)
        times = np.asarray(ts, dtype=np.float64)
        column = np.asarray(numbers, dtype=np.uint32).reshape(-1, 1)
        _add_by_day(self.blocks, keys, times, column, self.run_rows)  # type: ignore[arg-type]
        self.rows += len(keys)
        while self.rows > self.max_payments and self.blocks:
            self.rows -= _drop_oldest(self.blocks)[0]

    def find_many(self, payment_ids: Sequence[str]) -> list[tuple[str, float] | None]:
        """(store id, payment time) of each payment, None for one not remembered."""
        out: list[tuple[str, float] | None] = [None] * len(payment_ids)
        if not len(payment_ids):
            return out
        keys = payment_keys(payment_ids)
        for block in self.blocks.values():
            for at, ref in block.find(keys):
                if out[at] is None:
                    run, row = block.row(ref)
                    out[at] = (self.stores[int(run.inputs[row][0])], block.start + float(run.offsets[row]))
        return out

    def forget(self, now: float) -> None:
        """Drop the days past the horizon at event time `now`; the day over, a block becomes one run."""
        for day, block in list(self.blocks.items()):
            end = block.start + DAY_S
            if now >= end + self.horizon_s:
                self.rows -= len(self.blocks.pop(day))
            elif now >= end + 3600.0:
                block.compact()
