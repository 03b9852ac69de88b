"""The rules-file watch: reloads a changed file, keeps the rules on a bad one, applies threshold overrides."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from flows.rules_watch import RulesWatch
from operators.fraud.rules import RuleBookError

RULES = """
version = "{version}"
[decision]
review = 0.3
block = 0.8
[[rule]]
name = "card_testing"
when = [["card_payments_10m", ">=", 3]]
weight = 0.5
reason = "many payments on one card within 10 minutes"
"""


def _write(path: Path, text: str, bump_s: float) -> None:
    path.write_text(text)
    stamp = time.time() + bump_s  # a distinct mtime even on coarse-grained file systems
    os.utime(path, (stamp, stamp))


def test_a_changed_file_is_reloaded_at_the_next_check(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    _write(path, RULES.format(version="v1"), 0)
    watch = RulesWatch(path, check_s=0.01)
    assert watch.current().version == "v1"
    _write(path, RULES.format(version="v2"), 5)
    time.sleep(0.02)
    assert watch.current().version == "v2"


def test_a_bad_file_keeps_the_rules_in_force_and_logs_one_line_without_its_content(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rules.toml"
    _write(path, RULES.format(version="v1"), 0)
    watch = RulesWatch(path, check_s=0.01)
    _write(path, 'version = "v2"\nsecret_looking = "tok_123456"\n[decision\n', 5)
    time.sleep(0.02)
    with caplog.at_level(logging.WARNING):
        assert watch.current().version == "v1"
        time.sleep(0.02)
        assert watch.current().version == "v1"  # refused once, not re-read until it changes again
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert "tok_123456" not in refusals[0].getMessage()


def test_threshold_overrides_apply_on_top_of_every_version(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    _write(path, RULES.format(version="v1"), 0)
    watch = RulesWatch(path, check_s=0.01, review=0.5, block=0.9)
    book = watch.current()
    assert (book.review, book.block, book.decision(0.6)) == (0.5, 0.9, "review")


def test_a_bad_file_at_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("not = [toml")
    with pytest.raises(RuleBookError):
        RulesWatch(path)
