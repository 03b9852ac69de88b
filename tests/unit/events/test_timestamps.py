"""The timestamp formatter against the standard library's, over the range events use."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from events import timestamps
from events.timestamps import rfc3339_ms, second_prefix


def _strftime(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def test_every_second_of_a_day_and_its_edges_match_strftime() -> None:
    day = 1_795_305_600  # 2026-11-22T00:00:00Z
    for second in range(day - 1, day + 86_401):
        assert second_prefix(second) == _strftime(second)


def test_random_seconds_from_1950_to_2100_match_strftime_whatever_the_caches_hold() -> None:
    rng = random.Random(20261207)
    timestamps.SECOND_PREFIXES.clear()
    timestamps._DAYS.clear()
    for _ in range(20_000):
        second = rng.randrange(-631_152_000, 4_102_444_800)
        assert second_prefix(second) == _strftime(second)
        assert second_prefix(second) == _strftime(second)  # the cached answer too


def test_caches_stay_bounded_on_a_long_replay() -> None:
    for second in range(0, 86_400 * 5_000, 997):
        second_prefix(second)
    assert len(timestamps.SECOND_PREFIXES) <= 65_536
    assert len(timestamps._DAYS) <= 4_096


def test_milliseconds_read_back_as_the_datetime_the_decoder_gives() -> None:
    rng = random.Random(7)
    for _ in range(5_000):
        epoch_s = rng.uniform(0, 4_102_444_800)
        expected = datetime.fromtimestamp(epoch_s, UTC)
        text = rfc3339_ms(epoch_s)
        assert text == expected.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expected.microsecond // 1000:03d}Z"
