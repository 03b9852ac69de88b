"""Earn rules: exact points, and a rules file that is wrong is refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from operators.loyalty.rules import SCALE, EarnRules

RULES = Path(__file__).resolve().parents[3] / "deploy" / "loyalty" / "rules.toml"


def test_the_shipped_rules_load_and_price_exactly() -> None:
    rules = EarnRules.load(RULES)
    # 3 units at 0.10 in app: 0.30 x 1.5 = 0.45 points, exactly (floats would give 0.44999...).
    assert rules.line_units(10, "app", None, 0.0) * 3 == 45 * SCALE // 100
    assert rules.tier_of(49_999) == "member" and rules.tier_of(50_000) == "silver" and rules.tier_of(10**9) == "gold"
    # The campaign window doubles, on its start and not on its end.
    start, end = rules.campaigns[0].start_ts, rules.campaigns[0].end_ts
    assert rules.line_units(100, "pos", None, start) == 2 * rules.line_units(100, "pos", None, end)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"points_per_unit": {"pos": 1}}, "version: required"),
        ({"version": "1"}, "points_per_unit"),
        ({"version": "1", "points_per_unit": {"store": 1}}, "unknown channel 'store'"),
        ({"version": "1", "points_per_unit": {"pos": 1.0005}}, "finer than a thousandth"),
        ({"version": "1", "points_per_unit": {"pos": -1}}, "not a non-negative number"),
        (
            {
                "version": "1",
                "points_per_unit": {"pos": 1},
                "campaign": [{"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}],
            },
            "end must be after start",
        ),
    ],
)
def test_a_wrong_rules_document_is_refused_with_its_reason(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EarnRules.parse(doc)


def test_an_unreadable_rules_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "rules.toml"
    bad.write_text("version = ")
    with pytest.raises(ValueError, match=r"rules\.toml"):
        EarnRules.load(bad)
