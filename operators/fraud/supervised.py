"""Learning from `fraud_label` events: an online logistic regression.

Labels come back days to months after the payment (CONTRACT.md, `omni.labels`);
`operators.fraud.pending` keeps each payment's model input until then and hands
labelled (and, at maturity, presumed genuine) inputs here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


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
        # Row by row, not `x @ w`: a matrix-vector product's kernels sum a row in an order that depends on
        # how many rows came with it, so a payment's score would differ in its last digits with the batch.
        z = np.multiply(x, self.weights[:-1]).sum(axis=1) + self.weights[-1]
        proba: FloatArray = 1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0)))
        return proba

    def predict_one(self, x: Sequence[float]) -> float:
        z = sum(w * v for w, v in zip(self.weights[:-1].tolist(), x, strict=True)) + float(self.weights[-1])
        return 1.0 / (1.0 + math.exp(-max(-35.0, min(35.0, z))))

    def contributions(self, x: Sequence[float]) -> list[float]:
        """Each input's share of the log-odds (weight x value): what pushed this payment's score."""
        return [w * v for w, v in zip(self.weights[:-1].tolist(), x, strict=True)]

    def learn_many(
        self, x: FloatArray | Sequence[Sequence[float]], y: Sequence[bool], fraud_weight: float = 1.0
    ) -> None:
        """One AdaGrad step on a mini-batch (`y` True = fraud); a fraud example counts `fraud_weight` times."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[0] == 0:
            return
        target = np.asarray(y, dtype=np.float64)
        error = self.predict_many(x) - target
        if fraud_weight != 1.0:
            error *= np.where(target > 0.5, fraud_weight, 1.0)
        gradient = np.append(x.T @ error, error.sum()) + self.l2 * (self.weights - self._prior)
        self._squared += gradient * gradient
        self.weights -= self.learning_rate * gradient / np.sqrt(self._squared)
        self.updates += x.shape[0]
        self.positives += int(target.sum())

    def learn_one(self, x: Sequence[float], y: bool) -> None:
        self.learn_many([list(x)], [y])


BIN_EDGES = np.asarray([0.02, *np.arange(1, 16) / 16.0])
"""Edges of the bins of a scaled feature (0..1): each feature also enters the model as its bin, one-hot."""
N_BINS = len(BIN_EDGES) + 1


FINE_EDGES = np.arange(1, 64) / 64.0
"""Edges of the fine bins of one feature (the amount): 64 bins, steps of about 17% of the amount."""
N_FINE_BINS = len(FINE_EDGES) + 1


def with_bins(inputs: FloatArray, n_binned: int, fine: int | None = None) -> FloatArray:
    """`inputs` followed by the one-hot bin of each of its first `n_binned` columns (and of column `fine`, finely).

    A logistic model on bins is additive but not linear in each feature: it learns that
    amounts above a point are suspect, or that a store's fraud rate matters only once it
    is not tiny, which one weight per feature cannot. The pending store keeps `inputs`
    only; the bins are recomputed from them, the same each time.

    >>> row = with_bins(np.asarray([[0.0, 0.5, 7.0]]), n_binned=2)[0]
    >>> row[:3].tolist(), np.flatnonzero(row[3:]).tolist()  # bin 0 of the first, bin 9 of the second
    ([0.0, 0.5, 7.0], [0, 26])
    """
    n = inputs.shape[0]
    bins = np.searchsorted(BIN_EDGES, inputs[:, :n_binned], side="right")
    width = n_binned * N_BINS + (N_FINE_BINS if fine is not None else 0)
    onehot = np.zeros((n, width))
    onehot[np.arange(n)[:, None], np.arange(n_binned) * N_BINS + bins] = 1.0
    if fine is not None:
        # The amount is the strongest single signal (a payment far above what cards pay): 16 bins of a
        # 0..20,000 log scale are factors of 1.8 apart, too coarse to find where amounts turn suspect.
        onehot[np.arange(n), n_binned * N_BINS + np.searchsorted(FINE_EDGES, inputs[:, fine], side="right")] = 1.0
    return np.hstack((inputs, onehot))
