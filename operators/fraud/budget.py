"""Decision thresholds from a review budget and a target block precision, re-estimated from labels.

Investigators review a fixed number of payments a day, whatever the model's calibration:
a fixed `review` threshold floods them when the model's probabilities drift up (the
fraud weighting inflates them) and idles them when they drift down. So the `review`
threshold is the score that the previous event-time days' payments exceeded `review_per_day`
times a day, and the `block` threshold the lowest score at which the labelled payments
(labels received, and payments presumed genuine at maturity) were fraud at least
`block_precision` of the time. Both come from two fixed histograms over the score's
log-odds, never from a list of payments: a few kilobytes whatever the traffic.

Before a day of scores has been seen, or before enough labels, the rules file's
thresholds stay in force (`review` / `block` of `fallback`).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
DAY_S = 86_400.0
EDGES = np.linspace(-12.0, 12.0, 241)
"""Log-odds edges of the score histograms (0.1 apart): thresholds are chosen among them."""
_EDGE_SCORES = 1.0 / (1.0 + np.exp(-EDGES))


def _bins(scores: FloatArray) -> npt.NDArray[np.intp]:
    clipped = np.clip(scores, 1e-12, 1.0 - 1e-12)
    return np.searchsorted(EDGES, np.log(clipped / (1.0 - clipped)), side="right")


class DecisionBudget:
    """The `review` and `block` thresholds of one scorer shard.

    Parameters
    ----------
    review_per_day
        Payments a day this shard may send to review (the investigators' budget over the scorer shards).
    block_precision
        Share of blocked payments that must be fraud, judged on labels received.
    days
        Event-time days of scores the review threshold is estimated over.
    min_labelled
        Labelled payments above a candidate block threshold needed to trust its precision.

    Examples
    --------
    >>> budget = DecisionBudget(review_per_day=10, block_precision=0.9)
    >>> budget.thresholds(0.1, 0.8)  # nothing seen yet: the rules file's
    (0.1, 0.8)
    >>> budget.observe(np.linspace(0.0, 0.999, 1000), ts=0.0)
    >>> budget.observe(np.asarray([0.5]), ts=DAY_S)  # a new day: yesterday's scores set the review threshold
    >>> review, block = budget.thresholds(0.1, 0.999)  # 10 of yesterday's scores reach it; no labels yet
    >>> round(review, 3), block
    (0.989, 0.999)
    >>> budget.learn(np.asarray([0.2] * 50 + [0.9] * 30), np.asarray([False] * 50 + [True] * 28 + [False] * 2))
    >>> review, block = budget.thresholds(0.1, 0.8)  # 28 of the 30 labelled above 0.2 were fraud
    >>> round(block, 3), round(review, 3)
    (0.214, 0.214)
    """

    def __init__(self, review_per_day: float, block_precision: float, days: int = 7,
                 min_labelled: int = 20) -> None:  # fmt: skip
        self.review_per_day = review_per_day
        self.block_precision = block_precision
        self.days = days
        self.min_labelled = min_labelled
        self._day = -math.inf
        self._today = np.zeros(len(EDGES) + 1)
        self._past: list[FloatArray] = []  # per-bin counts of the last `days` complete days, oldest first
        self._frauds = np.zeros(len(EDGES) + 1)
        self._labelled = np.zeros(len(EDGES) + 1)
        self.review: float | None = None
        self.block: float | None = None

    def observe(self, scores: FloatArray, ts: float) -> None:
        """Count a batch of scores given at event time `ts` (the shard's clock)."""
        day = math.floor(ts / DAY_S)
        if day > self._day:
            if self._day > -math.inf and self._today.sum() > 0:
                self._past = [*self._past, self._today][-self.days :]
                self._review_from_past()
            self._day, self._today = day, np.zeros(len(EDGES) + 1)
        if len(scores):
            self._today += np.bincount(_bins(scores), minlength=len(EDGES) + 1)

    def learn(self, scores: FloatArray, is_fraud: npt.NDArray[np.bool_]) -> None:
        """Labelled payments (as the current model scores them): re-estimates the block threshold."""
        if not len(scores):
            return
        bins = _bins(scores)
        self._labelled += np.bincount(bins, minlength=len(EDGES) + 1)
        self._frauds += np.bincount(bins, weights=is_fraud.astype(np.float64), minlength=len(EDGES) + 1)
        above_n = np.cumsum(self._labelled[::-1])[::-1]  # labelled with score in bin i or higher
        above_f = np.cumsum(self._frauds[::-1])[::-1]
        ok = (above_n >= self.min_labelled) & (above_f >= self.block_precision * np.maximum(above_n, 1))
        # Bin i holds scores in [edge i-1, edge i): the lowest good bin's lower edge is the threshold.
        good = np.flatnonzero(ok[1:])
        self.block = float(_EDGE_SCORES[good[0]]) if len(good) else None

    def _review_from_past(self) -> None:
        per_day = np.mean(self._past, axis=0)
        above = np.cumsum(per_day[::-1])[::-1]
        within = np.flatnonzero(above[1:] <= self.review_per_day)
        self.review = float(_EDGE_SCORES[within[0]]) if len(within) else None

    def thresholds(self, review: float, block: float) -> tuple[float, float]:
        """(review, block) in force: the estimated ones, else `review` / `block` (the rules file's)."""
        chosen_block = self.block if self.block is not None else block
        chosen_review = self.review if self.review is not None else review
        return min(chosen_review, chosen_block), chosen_block
