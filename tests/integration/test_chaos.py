"""The fault campaign of `benchmarks/chaos.py`, short: kills, a Redis outage and a broker outage change no stock.

The short form (3 kills, 3-s outages, 4k events) runs with the suite; the full
campaign (20 kills, 10-s outages) is marked slow: `pytest -m slow tests/integration/test_chaos.py`,
or `python benchmarks/chaos.py`, whose figures the README quotes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.chaos import Campaign, Report, run_campaign

pytestmark = pytest.mark.integration


def assert_survived(report: Report, kills: int) -> None:
    assert len(report.recover_s) == kills  # every kill recovered: a receipt sent after it reached Redis
    assert report.pairs_checked > 1000
    assert not report.diffs, f"{len(report.diffs)} SKU x location pairs differ from the oracle: {report.diffs[:5]}"
    assert report.lost == report.double_applied == 0
    assert report.malformed > 0 and report.dead_letters == report.malformed
    assert report.dead_letters_without_reason == report.duplicate_dead_letters == 0
    outage = report.redis_outage
    assert outage["answers_while_down"] > 0 and outage["statuses"] == {"503": outage["answers_while_down"]}
    assert outage["slowest_ms"] < 100, outage  # a fast 503, never a hang
    assert outage["api_back_after_s"] < 30, outage  # and back by itself
    assert report.broker_outage["down_s"] > 0


def test_short_fault_campaign_ends_in_the_oracle_state(tmp_path: Path) -> None:
    report = run_campaign(Campaign(kills=3, outage_s=3.0, records=4_000, rate=400.0, seed=5), tmp_path)
    assert_survived(report, 3)


@pytest.mark.slow
def test_full_fault_campaign_ends_in_the_oracle_state(tmp_path: Path) -> None:
    report = run_campaign(Campaign(kills=20, outage_s=10.0, records=20_000, rate=300.0, seed=17), tmp_path)
    assert_survived(report, 20)
