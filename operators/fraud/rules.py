"""Fraud rules declared in a versioned TOML file, and their evaluation.

Analysts change thresholds and weights without a deploy: the flow re-reads
`deploy/fraud/rules.toml` when it changes and swaps in the new `RuleBook`.
Parsing is strict and all-or-nothing: any mistake raises `RuleBookError`
naming the rule and field at fault, and the caller keeps the rules it had.

A rule fires when ALL its conditions hold; the rule score is the noisy-OR of
the fired rules' weights, `1 - prod(1 - weight)`, so it stays in [0, 1],
grows with each independent piece of evidence, and one strong rule alone can
reach the block threshold. Reasons are the fired rules' texts, strongest
first; they name behaviour, never a card, a BIN or a shopper.
"""

from __future__ import annotations

import math
import operator
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from operators.fraud.features import FEATURE_NAMES, TILL_FEATURE_NAMES

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
SCOPES = ("payment", "till")
"""`payment`: scored card payments (sales, purchases). `till`: register actions (returns, voids)."""


class RuleBookError(ValueError):
    """The rules file is not valid; the message names the rule and the field."""


@dataclass(frozen=True, slots=True)
class Condition:
    """`feature op threshold`, e.g. `card_payments_10m >= 4`."""

    feature: str
    op: str
    threshold: float

    def holds(self, features: Mapping[str, float]) -> bool:
        return _OPERATORS[self.op](features.get(self.feature, 0.0), self.threshold)


@dataclass(frozen=True, slots=True)
class Rule:
    """One named rule: conditions that must all hold, its weight in the rule score, its reason text."""

    name: str
    when: tuple[Condition, ...]
    weight: float
    reason: str
    scope: str = "payment"

    def fires(self, features: Mapping[str, float]) -> bool:
        return all(condition.holds(features) for condition in self.when)


class RuleBook:
    """A versioned set of rules and the decision thresholds that turn a score into allow/review/block.

    Parameters
    ----------
    version
        The rule file's version; it goes into every score's `model_version`.
    rules
        The rules, in file order.
    review
        Scores at or above this are reviewed.
    block
        Scores at or above this are blocked (>= `review`).
    emergency
        Scores at or above this raise `emergency` alerts rather than `attention` ones.

    Examples
    --------
    >>> book = RuleBook.from_toml('''
    ... version = "test-1"
    ... [decision]
    ... review = 0.5
    ... block = 0.9
    ... [[rule]]
    ... name = "card_testing"
    ... when = [["card_payments_10m", ">=", 4]]
    ... weight = 0.7
    ... reason = "many payments on one card within 10 minutes"
    ... ''')
    >>> book.evaluate({"card_payments_10m": 5.0})
    (0.7, ['many payments on one card within 10 minutes'])
    >>> book.decision(0.7)
    'review'
    >>> try:
    ...     RuleBook.from_toml('version = "x"\\n[decision]\\nreview = 0.9\\nblock = 0.5')
    ... except RuleBookError as ex:
    ...     print(ex)
    [decision]: review (0.9) must be <= block (0.5)
    """

    def __init__(
        self, version: str, rules: tuple[Rule, ...], review: float, block: float, emergency: float = 1.0
    ) -> None:
        self.version = version
        self.rules = rules
        self.review = review
        self.block = block
        self.emergency = emergency
        self._by_scope = {scope: tuple(r for r in rules if r.scope == scope) for scope in SCOPES}
        payment_rules = self._by_scope["payment"]
        # Batch form of the payment rules: strongest first, so reasons come out in order.
        self._batch_rules = sorted(payment_rules, key=lambda rule: -rule.weight)
        self._columns = {name: i for i, name in enumerate(FEATURE_NAMES)}
        self._log_allowed = np.asarray([math.log1p(-min(r.weight, 1.0 - 1e-12)) for r in self._batch_rules])
        self._plan: _ConditionPlan | None = None  # built at the first batch

    @classmethod
    def from_toml(cls, text: str) -> RuleBook:
        """Parse a rules file; raises `RuleBookError` (never anything else) when it is not valid."""
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as ex:
            raise RuleBookError(f"not TOML: {ex}") from ex
        except (TypeError, AttributeError) as ex:
            raise RuleBookError(f"not text: {ex}") from ex
        version = doc.get("version")
        if not isinstance(version, str) or not version:
            raise RuleBookError("version: a non-empty string is required")
        decision = doc.get("decision")
        if not isinstance(decision, dict):
            raise RuleBookError("[decision]: the table with review and block is required")
        review = _probability(decision, "review", "[decision]")
        block = _probability(decision, "block", "[decision]")
        emergency = _probability(decision, "emergency", "[decision]", default=1.0)
        if review > block:
            raise RuleBookError(f"[decision]: review ({review}) must be <= block ({block})")
        if block > emergency:
            raise RuleBookError(f"[decision]: block ({block}) must be <= emergency ({emergency})")
        raw_rules = doc.get("rule", [])
        if not isinstance(raw_rules, list):
            raise RuleBookError("rule: must be an array of tables ([[rule]])")
        rules = []
        names: set[str] = set()
        for i, raw in enumerate(raw_rules):
            rule = _rule(raw, i)
            if rule.name in names:
                raise RuleBookError(f"rule {rule.name!r}: name used twice")
            names.add(rule.name)
            rules.append(rule)
        return cls(version, tuple(rules), review, block, emergency)

    def evaluate(self, features: Mapping[str, float], scope: str = "payment") -> tuple[float, list[str]]:
        """The rule score in [0, 1] and the fired rules' reasons, strongest first."""
        fired = [rule for rule in self._by_scope.get(scope, ()) if rule.fires(features)]
        if not fired:
            return 0.0, []
        fired.sort(key=lambda rule: -rule.weight)
        allowed = 1.0
        for rule in fired:
            allowed *= 1.0 - rule.weight
        return round(1.0 - allowed, 6), [rule.reason for rule in fired]

    def evaluate_many(self, raw: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], list[list[str]]]:
        """`evaluate` of the payment rules for a batch: `raw` is `features.feature_matrix` (rows are payments).

        Each condition is one numpy comparison over the whole batch; the noisy-OR is a sum of
        `log(1 - weight)` over fired rules.
        """
        n = raw.shape[0]
        if not self._batch_rules or n == 0:
            return np.zeros(n), [[] for _ in range(n)]
        plan = getattr(self, "_plan", None)  # None in a rule book pickled before the plan existed
        if plan is None:
            plan = self._plan = _ConditionPlan(self._batch_rules, self._columns)
        fired = plan.fired(raw)
        scores = np.round(1.0 - np.exp(self._log_allowed @ fired), 6)
        reasons: list[list[str]] = [[] for _ in range(n)]
        texts = [rule.reason for rule in self._batch_rules]
        for i, row in zip(*np.nonzero(fired), strict=True):
            reasons[int(row)].append(texts[int(i)])
        return scores, reasons

    def decision(self, score: float) -> str:
        """`allow`, `review` or `block` by this file's thresholds."""
        if score >= self.block:
            return "block"
        if score >= self.review:
            return "review"
        return "allow"

    def __repr__(self) -> str:
        return f"RuleBook(version={self.version!r}, rules={len(self.rules)}, review={self.review}, block={self.block})"


class _ConditionPlan:
    """Every condition of the payment rules as one comparison per operator over the batch, then one count per rule.

    A scorer shard's batch is tens of payments: a numpy call per condition (two dozen of them)
    cost more than the comparisons themselves. Here the columns of all conditions with the same
    operator are compared at once, and a rule fires when its count of holding conditions is its
    number of conditions; the result is the same boolean matrix as condition by condition.
    """

    def __init__(self, rules: list[Rule], columns: Mapping[str, int]) -> None:
        conditions = [(i, condition) for i, rule in enumerate(rules) for condition in rule.when]
        self.width = len(conditions)
        self.groups = []
        for op in sorted({condition.op for _, condition in conditions}):
            at = [k for k, (_, condition) in enumerate(conditions) if condition.op == op]
            self.groups.append((_OPERATORS[op], np.asarray(at, dtype=np.intp),
                                np.asarray([columns[conditions[k][1].feature] for k in at], dtype=np.intp),
                                np.asarray([conditions[k][1].threshold for k in at], dtype=np.float64)))  # fmt: skip
        self.incidence = np.zeros((self.width, len(rules)), dtype=np.int64)
        for k, (i, _) in enumerate(conditions):
            self.incidence[k, i] = 1
        self.needed = np.asarray([len(rule.when) for rule in rules], dtype=np.int64)

    def fired(self, raw: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """(rules, payments): whether each rule fires for each payment of `raw` (a feature matrix)."""
        holds = np.empty((raw.shape[0], self.width), dtype=np.int64)
        for compare, at, columns, thresholds in self.groups:
            holds[:, at] = compare(raw[:, columns], thresholds)  # type: ignore[arg-type]
        return np.ascontiguousarray((holds @ self.incidence == self.needed).T)


def reload_rules(text: str, current: RuleBook) -> tuple[RuleBook, str | None]:
    """The rules of a changed file, or the `current` ones and the reason when the file is not valid.

    What the flow calls when `deploy/fraud/rules.toml` changes: a half-edited or broken file
    never replaces working rules, and the message (rule and field at fault, no payment data)
    is fit for a log line.

    >>> good = RuleBook.from_toml('version = "1"\\n[decision]\\nreview = 0.3\\nblock = 0.8')
    >>> kept, error = reload_rules('version = "2"\\n[decision]\\nreview = 0.3', good)
    >>> kept is good, error
    (True, '[decision]: block must be a number in [0, 1], got None')
    >>> reload_rules('version = "2"\\n[decision]\\nreview = 0.2\\nblock = 0.7', good)[0].version
    '2'
    """
    try:
        return RuleBook.from_toml(text), None
    except RuleBookError as ex:
        return current, str(ex)


def _probability(table: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise RuleBookError(f"{where}: {key} must be a number in [0, 1], got {value!r}")
    return float(value)


def _rule(raw: Any, index: int) -> Rule:
    if not isinstance(raw, dict):
        raise RuleBookError(f"rule #{index + 1}: must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise RuleBookError(f"rule #{index + 1}: name must be a non-empty string")
    where = f"rule {name!r}"
    unknown = set(raw) - {"name", "when", "weight", "reason", "scope"}
    if unknown:
        raise RuleBookError(f"{where}: unknown field(s) {sorted(unknown)}")
    weight = _probability(raw, "weight", where)
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason:
        raise RuleBookError(f"{where}: reason must be a non-empty string")
    scope = raw.get("scope", "payment")
    if scope not in SCOPES:
        raise RuleBookError(f"{where}: scope must be one of {list(SCOPES)}, got {scope!r}")
    when = raw.get("when")
    if not isinstance(when, list) or not when:
        raise RuleBookError(f"{where}: when must be a non-empty list of [feature, op, threshold]")
    conditions = []
    for condition in when:
        if not isinstance(condition, list) or len(condition) != 3:
            raise RuleBookError(f"{where}: condition {condition!r} must be [feature, op, threshold]")
        feature, op, threshold = condition
        known = FEATURE_NAMES if scope == "payment" else TILL_FEATURE_NAMES
        if feature not in known:
            raise RuleBookError(f"{where}: unknown {scope} feature {feature!r}")
        if op not in _OPERATORS:
            raise RuleBookError(f"{where}: operator {op!r} must be one of {list(_OPERATORS)}")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
            raise RuleBookError(f"{where}: threshold of {feature} must be a finite number, got {threshold!r}")
        conditions.append(Condition(feature, op, float(threshold)))
    return Rule(name, tuple(conditions), weight, reason, scope)
