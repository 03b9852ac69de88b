"""A click model over recommendation features, learned online with river, applied without it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypedDict

from river import compose, linear_model, optim, preprocessing


class RankerWeights(TypedDict):
    """A ranker as plain JSON-able data: `rank_score` applies it with no river on the API's hot path.

    Weights are in raw feature units (the scaler is folded in), so the score is
    `sigmoid(intercept + sum(weights[f] * features[f]))`.
    """

    version: int
    intercept: float
    weights: dict[str, float]


def rank_score(weights: RankerWeights, features: Mapping[str, float]) -> float:
    """The click probability `weights` give `features`; missing features count as 0.

    >>> rank_score({"version": 1, "intercept": 0.0, "weights": {"covisit": 2.0}}, {"covisit": 0.0})
    0.5
    """
    z = weights["intercept"]
    for name, weight in weights["weights"].items():
        z += weight * features.get(name, 0.0)
    return _sigmoid(z)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)  # no overflow for very negative z
    return e / (1.0 + e)


class RecRanker:
    """Online logistic regression of "was this recommended SKU clicked" on its blend features.

    Trained on the served answers and their feedback (`experiments.FeedbackJoin`
    labels), it learns how much each candidate source is worth for the click,
    which hand-set blend weights can only guess. Features are standardised
    online (river `StandardScaler`) so one learning rate suits them all;
    `export` folds the scaler back into raw-unit weights.

    Parameters
    ----------
    learning_rate
        SGD step size.
    l2
        L2 penalty on the weights.

    Examples
    --------
    >>> ranker = RecRanker(learning_rate=0.1)
    >>> for _ in range(200):
    ...     ranker.learn_one({"covisit": 1.0, "trending_global": 0.2}, True)
    ...     ranker.learn_one({"covisit": 0.0, "trending_global": 0.9}, False)
    >>> ranker.predict_one({"covisit": 1.0, "trending_global": 0.2}) > 0.8
    True
    >>> weights = ranker.export()
    >>> weights["version"], weights["weights"]["covisit"] > 0
    (400, True)
    >>> abs(rank_score(weights, {"covisit": 1.0, "trending_global": 0.2})
    ...     - ranker.predict_one({"covisit": 1.0, "trending_global": 0.2})) < 1e-9
    True
    """

    def __init__(self, learning_rate: float = 0.05, l2: float = 0.0) -> None:
        self.learning_rate = learning_rate
        self.l2 = l2
        self._scaler = preprocessing.StandardScaler()
        self._model = linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate), l2=l2)
        self._pipeline = compose.Pipeline(self._scaler, self._model)
        self.version = 0

    def learn_one(self, features: Mapping[str, float], clicked: bool) -> None:
        self._pipeline.learn_one(dict(features), bool(clicked))
        self.version += 1

    def predict_one(self, features: Mapping[str, float]) -> float:
        """The click probability of a SKU with these features."""
        proba: dict[bool, float] = self._pipeline.predict_proba_one(dict(features))
        return float(proba.get(True, 0.0))

    def export(self) -> RankerWeights:
        """The current model as raw-unit weights (see `RankerWeights`)."""
        intercept = float(self._model.intercept)
        weights: dict[str, float] = {}
        means, variances = self._scaler.means, self._scaler.vars
        for name, weight in self._model.weights.items():
            std = math.sqrt(variances.get(name, 0.0))
            if std <= 0.0:
                continue  # a constant feature: the scaler maps it to 0, so it adds nothing
            weights[name] = float(weight) / std
            intercept -= float(weight) * means.get(name, 0.0) / std
        return {"version": self.version, "intercept": intercept, "weights": weights}
