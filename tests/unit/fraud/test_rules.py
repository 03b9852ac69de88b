"""The rule file: parsed strictly (a bad file is refused whole), evaluated alone and in batches."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from operators.fraud.features import FEATURE_NAMES, feature_matrix
from operators.fraud.rules import RuleBook, RuleBookError

RULES_FILE = Path(__file__).resolve().parents[3] / "deploy" / "fraud" / "rules.toml"
HEAD = 'version = "t1"\n[decision]\nreview = 0.3\nblock = 0.8\n'


def rule(body: str) -> str:
    return HEAD + "[[rule]]\n" + body


def test_default_rule_file_parses_with_sane_thresholds() -> None:
    book = RuleBook.from_toml(RULES_FILE.read_text())
    assert book.version
    assert 0 < book.review < book.block <= book.emergency <= 1
    assert {r.scope for r in book.rules} == {"payment", "till"}
    assert all(r.reason and "tok_" not in r.reason for r in book.rules)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version = [", "not TOML"),
        ("[decision]\nreview = 0.1\nblock = 0.2", "version"),
        ('version = "x"', "[decision]"),
        ('version = "x"\n[decision]\nreview = 0.9\nblock = 0.5', "review (0.9) must be <= block (0.5)"),
        ('version = "x"\n[decision]\nreview = 0.1\nblock = 1.5', "block must be a number in [0, 1]"),
        (rule('name = "a"\nwhen = [["no_such", ">=", 1]]\nweight = 0.5\nreason = "r"'), "unknown payment feature"),
        (rule('name = "a"\nwhen = [["amount", "~", 1]]\nweight = 0.5\nreason = "r"'), "operator '~'"),
        (rule('name = "a"\nwhen = [["amount", ">=", "x"]]\nweight = 0.5\nreason = "r"'), "threshold of amount"),
        (rule('name = "a"\nwhen = [["amount", ">="]]\nweight = 0.5\nreason = "r"'), "[feature, op, threshold]"),
        (rule('name = "a"\nwhen = [["amount", ">=", 1]]\nweight = 2\nreason = "r"'), "weight must be a number"),
        (rule('name = "a"\nwhen = [["amount", ">=", 1]]\nweight = 0.5'), "reason must be"),
        (rule('name = "a"\nwhen = [["amount", ">=", 1]]\nweight = 0.5\nreason = "r"\nscope = "web"'), "scope"),
        (rule('name = "a"\nwhen = [["amount", ">=", 1]]\nweight = 0.5\nreason = "r"\ncolour = 1'), "unknown field"),
        (rule('name = "a"\nwhen = [["cashier_voids_30m", ">=", 1]]\nweight = 0.5\nreason = "r"'), "unknown payment"),
        (
            rule(
                'name = "a"\nwhen = [["amount", ">=", 1]]\nweight = 0.5\nreason = "r"\n[[rule]]\n'
                'name = "a"\nwhen = [["amount", ">=", 2]]\nweight = 0.5\nreason = "r"'
            ),
            "name used twice",
        ),
    ],
)
def test_bad_rule_file_is_refused_with_a_message_naming_the_fault(text: str, message: str) -> None:
    with pytest.raises(RuleBookError) as raised:
        RuleBook.from_toml(text)
    assert message in str(raised.value)


def test_rule_score_is_the_noisy_or_of_fired_rules_strongest_reason_first() -> None:
    text = rule(
        'name = "a"\nwhen = [["amount", ">=", 100]]\nweight = 0.5\nreason = "big"\n'
        '[[rule]]\nname = "b"\nwhen = [["manual_entry", ">=", 1], ["amount", ">=", 10]]\nweight = 0.8\n'
        'reason = "keyed"'
    )
    book = RuleBook.from_toml(text)
    assert book.evaluate({"amount": 50.0}) == (0.0, [])
    assert book.evaluate({"amount": 500.0, "manual_entry": 1.0}) == (0.9, ["keyed", "big"])
    assert book.evaluate({"manual_entry": 1.0}) == (0.0, [])  # every condition must hold
    assert [book.decision(s) for s in (0.1, 0.3, 0.8)] == ["allow", "review", "block"]


def test_till_rules_do_not_score_payments() -> None:
    book = RuleBook.from_toml(
        rule('name = "t"\nscope = "till"\nwhen = [["cashier_voids_30m", ">=", 3]]\nweight = 0.9\nreason = "voids"')
    )
    assert book.evaluate({"cashier_voids_30m": 5.0}) == (0.0, [])
    assert book.evaluate({"cashier_voids_30m": 5.0}, scope="till") == (0.9, ["voids"])


def test_evaluate_many_matches_evaluate_on_random_payments() -> None:
    book = RuleBook.from_toml(RULES_FILE.read_text())
    rng = random.Random(3)
    rows = [{name: float(rng.choice([0, 0, 1, 2, 3, 5, 150, 400, 2000])) for name in FEATURE_NAMES} for _ in range(300)]
    scores, reasons = book.evaluate_many(feature_matrix(rows))
    expected = [book.evaluate(r) for r in rows]
    assert np.allclose(scores, [s for s, _ in expected])
    assert reasons == [r for _, r in expected]
    assert (scores > 0).sum() > 50


def test_nan_features_fire_no_rule() -> None:
    book = RuleBook.from_toml(RULES_FILE.read_text())
    scores, reasons = book.evaluate_many(feature_matrix([{"amount": float("nan"), "manual_entry": float("nan")}]))
    assert scores.tolist() == [0.0] and reasons == [[]]


def test_evaluate_many_matches_evaluate_for_every_operator_at_its_threshold() -> None:
    text = HEAD + "".join(
        f'[[rule]]\nname = "r{i}"\nwhen = [["amount", "{op}", 300], ["card_payments_10m", ">=", 2]]\n'
        f'weight = 0.{i + 1}\nreason = "{op} 300"\n'
        for i, op in enumerate((">=", ">", "<=", "<", "=="))
    )
    book = RuleBook.from_toml(text)
    rows = [{"amount": amount, "card_payments_10m": n} for amount in (299.0, 300.0, 301.0) for n in (1.0, 2.0)]
    scores, reasons = book.evaluate_many(feature_matrix(rows))
    expected = [book.evaluate(r) for r in rows]
    assert reasons == [r for _, r in expected]
    assert np.allclose(scores, [s for s, _ in expected])
    assert reasons[3] == [
        "== 300",
        "<= 300",
        ">= 300",
    ]  # amount 300: inclusive rules, strongest first


def test_rule_book_from_an_older_snapshot_still_evaluates_batches() -> None:
    book = RuleBook.from_toml(RULES_FILE.read_text())
    old = pickle.loads(pickle.dumps(book))
    del old._plan  # pickled before the batch plan existed
    rows = feature_matrix([{"card_payments_10m": 6.0, "card_not_present": 1.0}])
    assert old.evaluate_many(rows)[1] == book.evaluate_many(rows)[1] != [[]]
