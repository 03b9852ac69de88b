"""Learning from `fraud_label` events: the label join and an online logistic regression.

Labels come back minutes to days after the payment (CONTRACT.md, `omni.labels`).
To learn from one, the engine needs the model input the payment had *when it
was scored*, not features recomputed later with hindsight: `LabelJoin` keeps
those inputs by payment id, bounded by event time and by count. A payment that
no `fraud` label has claimed once the label delay is over is presumed
legitimate, as production fraud systems do once a label matures; without that,
the model would only ever see the rare payments someone labelled, mostly fraud,
and learn a fraud rate dozens of times too high.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import deque
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class LabelJoin:
    """Model inputs of recent payments, by payment id, until their label arrives or matures.

    Parameters
    ----------
    presume_legit_after_s
        Event-time seconds after which an unlabelled payment is handed back as
        presumed legitimate (`mature`). None keeps it until `retention_s` and
        then forgets it without learning from it.
    retention_s
        Event-time seconds an input is kept at most (>= `presume_legit_after_s`).
    max_entries
        Inputs kept at most; past it the oldest by event time are dropped unlearned (counted in `dropped`).
    sample_share
        Share of payments remembered at all, chosen by a stable hash of the payment id (the same
        in every process and after a restart). Below 1 it bounds memory at high rates: at 15k
        payments/s, 40 minutes of label delay is 36 million payments, and a 1% sample still
        brings back labels every second. A uniform sample keeps the fraud rate, so the model
        stays calibrated without reweighting.

    Examples
    --------
    >>> join = LabelJoin(presume_legit_after_s=1800.0, max_entries=1000)
    >>> join.remember("O1", ts=0.0, model_input=[0.5, 1.0])
    >>> join.remember("O2", ts=10.0, model_input=[0.0, 0.0])
    >>> join.take("O1")
    [0.5, 1.0]
    >>> join.take("O1") is None  # joined once
    True
    >>> join.mature(now=1805.0).tolist()
    []
    >>> join.mature(now=1810.0).tolist()  # O2 was never labelled fraud
    [[0.0, 0.0]]
    """

    def __init__(
        self,
        presume_legit_after_s: float | None = 2400.0,
        retention_s: float = 3600.0,
        max_entries: int = 500_000,
        sample_share: float = 1.0,
    ) -> None:
        self.presume_legit_after_s = presume_legit_after_s
        self.retention_s = retention_s
        self.max_entries = max_entries
        self.sample_share = sample_share
        self._sample_below = int(sample_share * 2**64)
        # payment id -> (ts, the batch's input matrix, row): a batch's rows share one array
        self._inputs: dict[str, tuple[float, npt.NDArray[np.float32], int]] = {}
        # (ts, payment id), a heap by event time: payments of a partition read late are often older than
        # ones already remembered, and must mature by their own time, not queue behind newer ones.
        self._order: list[tuple[float, str]] = []
        self.dropped = 0

    def __setstate__(self, state: dict[str, object]) -> None:
        order = state.get("_order")
        if isinstance(order, deque):  # a snapshot from before the heap: arrival order
            order = list(order)
            heapq.heapify(order)
            state["_order"] = order
        self.__dict__.update(state)

    def __len__(self) -> int:
        return len(self._inputs)

    def remember(self, payment_id: str, ts: float, model_input: Sequence[float]) -> None:
        """Keep the input a payment was scored with (a rescored payment keeps its first input)."""
        self.remember_many([payment_id], [ts], np.asarray([model_input], dtype=np.float64))

    def remember_many(self, payment_ids: Sequence[str], ts: Sequence[float], model_inputs: FloatArray) -> None:
        """`remember` for a scored batch: the rows of `model_inputs` are kept as one array (float32)."""
        matrix = np.asarray(model_inputs, dtype=np.float32)  # half the memory; labels teach no finer
        inputs, order = self._inputs, self._order
        sampled = self.sample_share < 1.0
        for row, (payment_id, payment_ts) in enumerate(zip(payment_ids, ts, strict=True)):
            if payment_id in inputs or (sampled and not self.sampled(payment_id)):
                continue
            inputs[payment_id] = (payment_ts, matrix, row)
            heapq.heappush(order, (payment_ts, payment_id))
        while len(inputs) > self.max_entries:
            _, oldest = heapq.heappop(order)
            if inputs.pop(oldest, None) is not None:
                self.dropped += 1

    def sampled(self, payment_id: str) -> bool:
        """Whether `payment_id` falls in the remembered sample (always, with `sample_share` 1)."""
        if self.sample_share >= 1.0:
            return True
        digest = hashlib.blake2b(payment_id.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") < self._sample_below

    def take(self, payment_id: str) -> list[float] | None:
        """The input of a labelled payment, removed (a label teaches once), or None if unknown or expired."""
        kept = self._inputs.pop(payment_id, None)
        return None if kept is None else kept[1][kept[2]].tolist()

    def mature(self, now: float) -> FloatArray:
        """Inputs of payments older than `presume_legit_after_s` at event time `now`, removed: presumed legit.

        One row per payment, oldest first. Without maturity configured, payments past
        `retention_s` are dropped unlearned (and nothing is returned).
        """
        after = self.presume_legit_after_s
        horizon = now - (after if after is not None else self.retention_s)
        order, inputs = self._order, self._inputs
        blocks: list[npt.NDArray[np.float32]] = []
        batch: npt.NDArray[np.float32] | None = None
        rows: list[int] = []
        while order and order[0][0] <= horizon:
            _, payment_id = heapq.heappop(order)
            kept = inputs.pop(payment_id, None)
            if kept is None or after is None:
                continue
            if kept[1] is not batch:  # rows of one scored batch are gathered with one fancy index
                if batch is not None:
                    blocks.append(batch[rows])
                batch, rows = kept[1], []
            rows.append(kept[2])
        if batch is not None:
            blocks.append(batch[rows])
        if not blocks:
            return np.zeros((0, 0))
        return np.concatenate(blocks).astype(np.float64)


class OnlineLogit:
    """Logistic regression learned online with AdaGrad steps; predicts the probability of fraud.

    AdaGrad scales each weight's step by its own gradient history, so rare
    binary features (a manual entry, a new device) learn as fast as dense ones
    and a mini-batch of many presumed-legit payments cannot overshoot. Weights
    start at zero: before its first label it predicts 0.5 for everything, which
    is why `FraudScorer` waits for `min_labels` before trusting it.

    Parameters
    ----------
    n_features
        Input width.
    learning_rate
        AdaGrad base step.
    l2
        Pull of the weights back towards `prior` per update.
    prior
        Starting weights (the intercept last); zeros by default. Starting from a known
        scorer's weights makes the model that scorer until labels say otherwise.

    Examples
    --------
    >>> model = OnlineLogit(n_features=2, learning_rate=0.5)
    >>> for _ in range(200):
    ...     model.learn_many([[1.0, 0.0], [0.0, 1.0]], [True, False])
    >>> high, low = model.predict_many([[1.0, 0.0], [0.0, 1.0]])
    >>> bool(high > 0.9 and low < 0.1), model.updates
    (True, 400)
    """

    def __init__(
        self, n_features: int, learning_rate: float = 0.1, l2: float = 1e-5, prior: Sequence[float] | None = None
    ) -> None:
        self.n_features = n_features
        self.learning_rate = learning_rate
        self.l2 = l2
        self.prior = prior
        self._prior = np.zeros(n_features + 1) if prior is None else np.asarray(prior, dtype=np.float64)
        if self._prior.shape != (n_features + 1,):
            raise ValueError(f"prior needs {n_features + 1} weights (the intercept last), got {self._prior.shape}")
        self.weights = self._prior.copy()  # the last one is the intercept
        self._squared = np.full(n_features + 1, 1e-8)
        self.updates = 0
        self.positives = 0

    def predict_many(self, x: FloatArray | Sequence[Sequence[float]]) -> FloatArray:
        x = np.asarray(x, dtype=np.float64)
        if x.shape[0] == 0:
            return np.zeros(0)
        z = x @ self.weights[:-1] + self.weights[-1]
        proba: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))
        return proba

    def predict_one(self, x: Sequence[float]) -> float:
        z = sum(w * v for w, v in zip(self.weights[:-1].tolist(), x, strict=True)) + float(self.weights[-1])
        return 1.0 / (1.0 + math.exp(-max(-35.0, min(35.0, z))))

    def contributions(self, x: Sequence[float]) -> list[float]:
        """Each input's share of the log-odds (weight x value): what pushed this payment's score."""
        return [w * v for w, v in zip(self.weights[:-1].tolist(), x, strict=True)]

    def learn_many(self, x: FloatArray | Sequence[Sequence[float]], y: Sequence[bool]) -> None:
        """One AdaGrad step on a mini-batch (`y` True = fraud)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[0] == 0:
            return
        target = np.asarray(y, dtype=np.float64)
        error = self.predict_many(x) - target
        gradient = np.append(x.T @ error, error.sum()) + self.l2 * (self.weights - self._prior)
        self._squared += gradient * gradient
        self.weights -= self.learning_rate * gradient / np.sqrt(self._squared)
        self.updates += x.shape[0]
        self.positives += int(target.sum())

    def learn_one(self, x: Sequence[float], y: bool) -> None:
        self.learn_many([list(x)], [y])
