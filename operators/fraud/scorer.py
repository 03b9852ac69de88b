"""The fraud score of a payment: rules, an anomaly model and a supervised model, blended and decided.

- The rule score (`RuleBook`) is what analysts declared; it works from the first payment.
- The anomaly score (`HalfSpaceForest`) needs no labels: it flags payments unlike recent traffic.
- The supervised model (`OnlineLogit`) learns from `fraud_label` events (joined to the inputs the
  payment was scored with, see `LabelJoin`). Its inputs are the scaled features PLUS the rule and
  anomaly scores, so it is also the blend: a stacked logistic regression that learns how much to
  trust each signal, and its output is a calibrated probability of fraud. Until it has seen
  `min_labels` fraud labels, the blend is the rule score alone (a model that has seen nothing
  would say 0.5 to everything).

The decision applies the rule file's `review` / `block` thresholds to the blended score. Reasons
are the fired rules' texts, then the features that pushed the model's log-odds up the most: rule
texts and feature names only, never a card, a BIN or a shopper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np

from operators.fraud.anomaly import HalfSpaceForest
from operators.fraud.features import FEATURE_NAMES, vectorize
from operators.fraud.rules import RuleBook
from operators.fraud.supervised import OnlineLogit

Mode = Literal["full", "rules_only", "anomaly_only"]
MODES: tuple[Mode, ...] = ("full", "rules_only", "anomaly_only")
MODEL_INPUT_NAMES: tuple[str, ...] = (*FEATURE_NAMES, "rule_score", "anomaly_score")
"""What the supervised model reads, in order: `FraudScore.model_input` has these values."""


class FraudScore(NamedTuple):
    """The verdict on one payment, as `GET /v1/scores/{id}` serves it (plus the parts, for learning).

    `model_input` is what the supervised model read; the flow keeps it in a `LabelJoin`
    until the payment's label arrives.
    """

    score: float
    decision: str
    reasons: list[str]
    model_version: str
    rule_score: float
    anomaly_score: float
    model_input: tuple[float, ...]


class FraudScorer:
    """Scores payments from their merged features; learns normal traffic and labels.

    Parameters
    ----------
    rules
        The rule book in force (replace it with `set_rules`).
    mode
        `full` (the blend), `rules_only` or `anomaly_only`: the last two exist for
        comparison in the quality harness.
    min_labels
        Fraud labels the supervised model must have learned before it decides.
    top_features
        Feature names added to the reasons.
    n_trees, height, window_size, seed
        Of the anomaly model (`HalfSpaceForest`).
    learning_rate
        Of the supervised model (`OnlineLogit`).

    Examples
    --------
    >>> book = RuleBook.from_toml('''
    ... version = "r1"
    ... [decision]
    ... review = 0.5
    ... block = 0.9
    ... [[rule]]
    ... name = "manual_high_value"
    ... when = [["manual_entry", ">=", 1], ["high_value", ">=", 1]]
    ... weight = 0.95
    ... reason = "high-value card payment keyed in by hand"
    ... ''')
    >>> scorer = FraudScorer(book)
    >>> verdict = scorer.score_one({"manual_entry": 1.0, "high_value": 1.0, "amount": 1500.0})
    >>> verdict.score, verdict.decision, verdict.reasons, verdict.model_version
    (0.95, 'block', ['high-value card payment keyed in by hand'], 'r1+hst0+lr0')
    """

    def __init__(
        self,
        rules: RuleBook,
        mode: Mode = "full",
        min_labels: int = 20,
        top_features: int = 3,
        n_trees: int = 25,
        height: int = 8,
        window_size: int = 1000,
        seed: int = 7,
        learning_rate: float = 0.1,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.rules = rules
        self.mode = mode
        self.min_labels = min_labels
        self.top_features = top_features
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.learning_rate = learning_rate
        self.forest = HalfSpaceForest(len(FEATURE_NAMES), n_trees, height, window_size, seed=seed)
        self.model = OnlineLogit(len(MODEL_INPUT_NAMES), learning_rate)

    def set_rules(self, rules: RuleBook) -> None:
        """Swap in a reloaded rule book; the models keep what they learned."""
        self.rules = rules

    @property
    def model_version(self) -> str:
        """Rule file version, anomaly windows learned, supervised updates: changes whenever either learns."""
        return f"{self.rules.version}+hst{self.forest.windows}+lr{self.model.updates}"

    @property
    def supervised_ready(self) -> bool:
        return self.model.positives >= self.min_labels

    def score_many(self, features: Sequence[Mapping[str, float]]) -> list[FraudScore]:
        """Scores of a batch of payments (their merged feature dicts); reads only."""
        if not features:
            return []
        vectors = [vectorize(f) for f in features]
        anomaly = self.forest.score_many(np.asarray(vectors)).tolist()
        ruled = [self.rules.evaluate(f) for f in features]
        inputs = [(*v, r[0], a) for v, r, a in zip(vectors, ruled, anomaly, strict=True)]
        use_model = self.mode == "full" and self.supervised_ready
        proba = self.model.predict_many(np.asarray(inputs)).tolist() if use_model else None
        version = self.model_version
        out = []
        for i, ((rule_score, rule_reasons), anomaly_score, model_input) in enumerate(
            zip(ruled, anomaly, inputs, strict=True)
        ):
            reasons = list(rule_reasons)
            if self.mode == "rules_only":
                score = rule_score
            elif self.mode == "anomaly_only":
                score = anomaly_score
                if score >= self.rules.review:
                    reasons.append("unusual compared with recent payments")
            elif proba is not None:
                score = proba[i]
                reasons += self._top_features(model_input)
            else:
                score = rule_score
            score = round(min(1.0, max(0.0, score)), 6)
            decision = self.rules.decision(score)
            out.append(FraudScore(score, decision, reasons, version, rule_score, round(anomaly_score, 6), model_input))
        return out

    def score_one(self, features: Mapping[str, float]) -> FraudScore:
        return self.score_many([features])[0]

    def _top_features(self, model_input: Sequence[float]) -> list[str]:
        ranked = sorted(enumerate(self.model.contributions(model_input)), key=lambda pair: -pair[1])
        return [f"feature: {MODEL_INPUT_NAMES[i]}" for i, c in ranked[: self.top_features] if c > 0.5]

    def learn_many(self, features: Sequence[Mapping[str, float]]) -> None:
        """The anomaly model learns a batch of payments as (mostly normal) traffic."""
        if features:
            self.forest.learn_many(np.asarray([vectorize(f) for f in features]))

    def learn_labels(self, model_inputs: Sequence[Sequence[float]], is_fraud: Sequence[bool]) -> None:
        """The supervised model learns from labelled (or matured, presumed legit) payments' inputs."""
        if model_inputs:
            self.model.learn_many(np.asarray(model_inputs, dtype=np.float64), is_fraud)
