"""The fraud score of a payment: rules, an anomaly model and a supervised model, blended and decided.

- The rule score (`RuleBook`) is what analysts declared; it works from the first payment.
- The anomaly score (`HalfSpaceForest`) needs no labels: it flags payments unlike recent traffic.
- The supervised model (`OnlineLogit`) learns from `fraud_label` events (joined to the inputs the
  payment was scored with, see `LabelJoin`). Its inputs are the scaled features PLUS the rule
  score (as log-odds) and the anomaly score, so it is also the blend: a stacked logistic regression
  that learns how much to trust each signal and outputs a calibrated probability of fraud.
  It starts AS the rule book (weight 1 on the rule log-odds, 0 elsewhere: its first output is the
  rule score exactly), so there is no cold-start gap and no jump when learning begins; labels then
  move it where the rules are wrong. It learns nothing until `min_legit` legitimate examples have
  arrived (fraud labels come back first; learning from them alone would call everything fraud):
  the examples wait in a bounded buffer until then.

The decision applies the rule file's `review` / `block` thresholds to the blended score. Reasons
are the fired rules' texts, then the features that pushed the model's log-odds up the most: rule
texts and feature names only, never a card, a BIN or a shopper.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from operators.fraud.anomaly import HalfSpaceForest
from operators.fraud.budget import DecisionBudget
from operators.fraud.features import FEATURE_NAMES, feature_matrix, scale_matrix
from operators.fraud.rules import RuleBook
from operators.fraud.supervised import N_BINS, N_FINE_BINS, OnlineLogit, with_bins

FloatArray = npt.NDArray[np.float64]

Mode = Literal["full", "rules_only", "anomaly_only"]
MODES: tuple[Mode, ...] = ("full", "rules_only", "anomaly_only")
MODEL_INPUT_NAMES: tuple[str, ...] = (*FEATURE_NAMES, "rule_log_odds", "anomaly_score")
_RULE_FLOOR = 1e-3  # rule scores are clipped to [0.001, 0.999] before their log-odds: 0 would be -infinity
"""What the supervised model reads, in order: `FraudScore.model_input` has these values."""


ANOMALY_INPUTS = FEATURE_NAMES.index("card_payments_1d")
"""The anomaly model reads the features before the day-scale ones (`operators.fraud.behaviour`): counts
over 30 days and store fraud rates are not "unlike recent traffic", and with them its PR-AUC on the
simulator fell from 0.70 to 0.49 (`benchmarks/results/fraud_quality.json`, runs of 2026-12-06)."""


def _pushes_per_input(pushes: FloatArray) -> FloatArray:
    """Log-odds pushes of the binned columns summed back to the model inputs they came from (per row).

    One sum over each feature's bins, not a numpy call per column (~700 of them): a feature's bins
    are one-hot, so that sum is its one pushed bin exactly, and the totals equal the column-by-column ones.
    """
    n, width = pushes.shape[0], len(MODEL_INPUT_NAMES)
    binned_end = width + len(FEATURE_NAMES) * N_BINS
    out = pushes[:, :width].copy()
    out[:, : len(FEATURE_NAMES)] += pushes[:, width:binned_end].reshape(n, len(FEATURE_NAMES), N_BINS).sum(axis=2)
    out[:, _FINE] += pushes[:, binned_end:].sum(axis=1)
    return out


_FINE = FEATURE_NAMES.index("amount")
"""The feature binned finely too (`operators.fraud.supervised.with_bins`)."""


def _binned(inputs: FloatArray) -> FloatArray:
    return with_bins(inputs, len(FEATURE_NAMES), _FINE)


class FraudScore(NamedTuple):
    """The verdict on one payment, as `GET /v1/scores/{id}` serves it (plus the parts, for learning).

    `model_input` is what the supervised model read (in `MODEL_INPUT_NAMES` order); the flow
    keeps it in a `LabelJoin` until the payment's label arrives.
    """

    score: float
    decision: str
    reasons: list[str]
    model_version: str
    rule_score: float
    anomaly_score: float
    model_input: Sequence[float]


class FraudScorer:
    """Scores payments from their merged features; learns normal traffic and labels.

    Parameters
    ----------
    rules
        The rule book in force (replace it with `set_rules`).
    mode
        `full` (the blend), `rules_only` or `anomaly_only`: the last two exist for
        comparison in the quality harness.
    min_legit
        Legitimate examples (labelled or presumed) that must have arrived before the supervised
        model learns anything; examples wait in a buffer of at most `max_pending` until then.
    max_fraud_share
        The supervised model scores only while at most this share of what it learned were frauds
        (`supervised_ready`).
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

    max_fraud_share: float = 0.5  # the default, also for scorers restored from older snapshots

    def __init__(
        self,
        rules: RuleBook,
        mode: Mode = "full",
        min_legit: int = 500,
        max_pending: int = 100_000,
        top_features: int = 3,
        n_trees: int = 25,
        height: int = 8,
        window_size: int = 1000,
        seed: int = 7,
        learning_rate: float = 1.0,
        max_fraud_weight: float = 30.0,
        budget: DecisionBudget | None = None,
        max_fraud_share: float = 0.5,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.rules = rules
        self.mode = mode
        self.min_legit = min_legit
        self.max_pending = max_pending
        self.top_features = top_features
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.learning_rate = learning_rate
        self.forest = HalfSpaceForest(ANOMALY_INPUTS, n_trees, height, window_size, seed=seed)
        width = len(MODEL_INPUT_NAMES) + N_BINS * len(FEATURE_NAMES) + N_FINE_BINS
        prior = [0.0] * (width + 1)
        prior[MODEL_INPUT_NAMES.index("rule_log_odds")] = 1.0
        self.model = OnlineLogit(width, learning_rate, prior=prior)
        self.max_fraud_weight = max_fraud_weight
        self.max_fraud_share = max_fraud_share
        self.budget = budget
        self._pending: deque[tuple[tuple[float, ...], bool]] = deque(maxlen=max_pending)
        self._legit_seen = 0

    def set_rules(self, rules: RuleBook) -> None:
        """Swap in a reloaded rule book; the models keep what they learned."""
        self.rules = rules

    @property
    def model_version(self) -> str:
        """Rule file version, anomaly windows learned, supervised updates: changes whenever either learns."""
        return f"{self.rules.version}+hst{self.forest.windows}+lr{self.model.updates}"

    @property
    def supervised_ready(self) -> bool:
        """Whether the supervised model scores (before, the rule score does): it has learned, from a plausible mix.

        Banks send fraud labels (chargebacks) within days, but a genuine payment is learned only
        once it is presumed genuine at maturity (`OMNISTREAM_FRAUD_MATURITY_S`, 120 days by default).
        Until then nearly every example is a fraud, and a model trusted on that mix calls every payment
        fraud: on the simulator it blocked seven genuine payments for each fraud (block precision 0.15).
        So it scores only while at most `max_fraud_share` of what it learned were frauds; it keeps
        learning meanwhile.
        """
        updates = self.model.updates
        return updates > 0 and self.model.positives <= self.max_fraud_share * updates

    @property
    def examples_buffered(self) -> int:
        """Labelled examples waiting for the first `min_legit` genuine ones before the model learns them all."""
        return len(self._pending)

    def score_many(self, features: Sequence[Mapping[str, float]]) -> list[FraudScore]:
        """Scores of a batch of payments (their merged feature dicts); reads only.

        Whole-batch numpy: features to a matrix, rules as column comparisons, the forest and the
        logistic model as array operations; only the verdict objects are built per payment.
        """
        return self.score_batch(features)[0]

    def score_batch(
        self, features: Sequence[Mapping[str, float]], learn: bool = False
    ) -> tuple[list[FraudScore], FloatArray]:
        """`score_many`, plus the batch's model inputs as one (n, len(MODEL_INPUT_NAMES)) array.

        Hand that array to `LabelJoin.remember_many`: cheaper than gathering
        `FraudScore.model_input` back row by row. `learn=True` also teaches the anomaly model the
        batch (after scoring it, as `learn_many` would), walking its trees once for both.
        """
        if not features:
            return [], np.zeros((0, len(MODEL_INPUT_NAMES)))
        raw = feature_matrix(features)
        scaled = scale_matrix(raw)
        rule_scores, rule_reasons = self.rules.evaluate_many(raw)
        recent = scaled[:, :ANOMALY_INPUTS]
        forest_scores = self.forest.score_learn_many(recent) if learn else self.forest.score_many(recent)
        anomaly = np.round(forest_scores, 6)
        clipped = np.clip(rule_scores, _RULE_FLOOR, 1.0 - _RULE_FLOOR)
        inputs = np.column_stack((scaled, np.log(clipped / (1.0 - clipped)), anomaly))
        if self.mode == "rules_only":
            chosen = rule_scores
        elif self.mode == "anomaly_only":
            chosen = anomaly
        elif self.supervised_ready:
            chosen = self.model.predict_many(_binned(inputs))
        else:
            chosen = rule_scores  # what the untrained model would say, without the clipping
        clipped_scores = np.clip(chosen, 0.0, 1.0)  # full precision: a rounded score loses the ranking
        scores: list[float] = clipped_scores.tolist()
        review, block = self.thresholds
        reviewed = np.where(clipped_scores >= review, "review", "allow")
        decisions = np.where(clipped_scores >= block, "block", reviewed).tolist()
        version = self.model_version
        flagged = np.flatnonzero(clipped_scores >= review).tolist()
        if flagged and self.mode == "full" and self.supervised_ready:
            # Contributions to the log-odds, feature by feature: only for payments worth a reason.
            pushes = _pushes_per_input(_binned(inputs[flagged]) * self.model.weights[:-1])
            for row, push in zip(flagged, pushes, strict=True):
                rule_reasons[row] += self._top_features(push)
        elif flagged and self.mode == "anomaly_only":
            for row in flagged:
                rule_reasons[row].append("unusual compared with recent payments")
        rows = inputs.tolist()  # Python floats: cheaper to keep and to pickle than numpy scalars
        make = tuple.__new__  # NamedTuple's own __new__ is a Python-level call: ~0.5 us per payment
        out = [
            make(FraudScore, fields)
            for fields in zip(
                scores, decisions, rule_reasons, [version] * len(scores), rule_scores.tolist(), anomaly.tolist(), rows,
                strict=True,
            )
        ]  # fmt: skip
        return out, inputs

    @property
    def thresholds(self) -> tuple[float, float]:
        """(review, block) in force: from the decision budget once it has estimates, else the rules file's."""
        if self.budget is None:
            return self.rules.review, self.rules.block
        return self.budget.thresholds(self.rules.review, self.rules.block)

    def score_one(self, features: Mapping[str, float]) -> FraudScore:
        return self.score_many([features])[0]

    def _top_features(self, pushes: npt.NDArray[np.float64]) -> list[str]:
        top = np.argsort(-pushes)[: self.top_features]
        return [f"feature: {MODEL_INPUT_NAMES[i]}" for i in top.tolist() if pushes[i] > 0.5]

    def learn_many(self, features: Sequence[Mapping[str, float]]) -> None:
        """The anomaly model learns a batch of payments as (mostly normal) traffic."""
        if features:
            self.forest.learn_many(scale_matrix(feature_matrix(features))[:, :ANOMALY_INPUTS])

    def learn_inputs(self, model_inputs: FloatArray) -> None:
        """`learn_many` for a batch just scored (`score_batch`'s array): no features recomputed."""
        if len(model_inputs):
            self.forest.learn_many(model_inputs[:, :ANOMALY_INPUTS])

    def learn_anomaly_rows(self, rows: FloatArray) -> None:
        """The anomaly model learns payments by the first columns of their model inputs (`score_batch`'s array)."""
        if len(rows):
            self.forest.learn_many(rows)

    def learn_labels(self, model_inputs: Sequence[Sequence[float]] | FloatArray, is_fraud: Sequence[bool]) -> None:
        """The supervised model learns from labelled (or matured, presumed legit) payments' inputs."""
        if len(model_inputs) == 0:
            return
        self._legit_seen += sum(1 for y in is_fraud if not y)
        if self.model.updates == 0 and self._legit_seen < self.min_legit:
            self._pending.extend(zip((tuple(map(float, x)) for x in model_inputs), is_fraud, strict=True))
            return
        inputs, labels = np.asarray(model_inputs, dtype=np.float64), list(is_fraud)
        if self._pending:
            inputs = np.vstack([np.asarray([x for x, _ in self._pending]), inputs])
            labels = [y for _, y in self._pending] + labels
            self._pending.clear()
        binned = _binned(inputs)
        if self.budget is not None and self.supervised_ready:
            # Judged before learning them: the block precision of the model as it scores now.
            self.budget.learn(self.model.predict_many(binned), np.asarray(labels, dtype=bool))
        self.model.learn_many(binned, labels, self.fraud_weight(labels))

    def fraud_weight(self, labels: Sequence[bool]) -> float:
        """How many genuine examples a fraud example counts for: the square root of the imbalance seen so far.

        Frauds are about 1% of payments: unweighted, the model learns mostly that payments are
        genuine. Weighting by the full ratio over-corrects (every score high, poorly ranked among
        the top); its square root, capped at `max_fraud_weight`, balances them half way. The
        probabilities it inflates do not flood the investigators: the decision budget
        (`operators.fraud.budget`) sets the thresholds by rank.
        """
        positives = self.model.positives + sum(labels)
        negatives = self.model.updates + len(labels) - positives
        if positives == 0:
            return 1.0
        return float(min(self.max_fraud_weight, max(1.0, (negatives / positives) ** 0.5)))
