"""`SeenEvents`: a redelivered `event_id` is recognised for at least `window_s` of event time."""

from __future__ import annotations

import pickle
import random
from array import array

import pytest

from operators.seen_events import SeenEvents


def test_seen_events_drops_a_duplicate_within_the_window() -> None:
    seen = SeenEvents(window_s=3600)

    assert seen.add("e1", ts=0.0) is True
    assert seen.add("e2", ts=100.0) is True
    assert seen.add("e1", ts=0.0) is False
    assert seen.add("e2", ts=100.0) is False
    assert len(seen) == 2


def test_seen_events_remembers_an_id_exactly_window_s_behind_the_newest() -> None:
    seen = SeenEvents(window_s=3600)
    seen.add("e1", ts=0.0)
    seen.add("e2", ts=3600.0)

    assert seen.add("e1", ts=0.0) is False


def test_seen_events_forgets_an_id_once_newest_ts_is_past_the_window() -> None:
    seen = SeenEvents(window_s=3600)
    seen.add("e1", ts=0.0)
    seen.add("e2", ts=3600.5)

    assert len(seen) == 1
    assert seen.add("e1", ts=0.0) is True


def test_seen_events_does_not_age_out_on_an_older_event() -> None:
    seen = SeenEvents(window_s=100)
    seen.add("e1", ts=1000.0)
    seen.add("e2", ts=0.0)  # late and old: must not rewind or advance the window

    assert seen.add("e1", ts=1000.0) is False
    assert seen.add("e2", ts=0.0) is False


def test_seen_events_keeps_a_late_old_id_at_least_window_s() -> None:
    seen = SeenEvents(window_s=100)
    seen.add("new", ts=500.0)
    seen.add("late", ts=450.0)
    seen.add("later", ts=550.0)  # horizon 450: "late" is exactly window_s behind

    assert seen.add("late", ts=450.0) is False


def test_seen_events_forgets_everything_after_a_long_gap() -> None:
    seen = SeenEvents(window_s=60)
    rng = random.Random(7)
    for i in range(500):
        seen.add(f"e{i}", ts=rng.uniform(0, 1000))

    seen.add("tomorrow", ts=90_000.0)

    assert len(seen) == 1


@pytest.mark.parametrize("window_s", [10.0, 100.0, 1000.0])
def test_seen_events_keeps_every_id_within_window_s_of_the_newest_in_any_order(window_s: float) -> None:
    for seed in range(100):
        rng = random.Random(seed)
        seen = SeenEvents(window_s=window_s)
        added: dict[str, float] = {}
        newest = float("-inf")
        clock = 0.0
        for i in range(300):
            clock += rng.uniform(0, 20)
            ts = clock - rng.uniform(0, 2 * window_s)  # out of order, sometimes beyond the window
            event_id = rng.choice(list(added)) if added and rng.random() < 0.2 else f"e{i}"
            ts = added.get(event_id, ts)  # a redelivery carries its original ts
            first = seen.add(event_id, ts)
            if event_id in added and ts >= newest - window_s:
                assert first is False, (seed, i, event_id)
            added.setdefault(event_id, ts)
            newest = max(newest, ts)
            for old_id, old_ts in added.items():
                if old_ts >= newest - window_s:
                    assert seen.add(old_id, old_ts) is False, (seed, i, old_id)


def test_seen_events_survives_pickling() -> None:
    seen = SeenEvents(window_s=100)
    seen.add("e1", ts=0.0)
    seen.add("e2", ts=50.0)

    restored = pickle.loads(pickle.dumps(seen))

    assert restored.add("e1", ts=0.0) is False
    assert restored.add("e3", ts=150.0) is True
    assert restored.add("e1", ts=0.0) is True  # aged out after the restore, as without one
    assert len(restored) == 3


def test_seen_events_pickled_by_the_earlier_release_keep_their_window() -> None:
    # Pickled before `SeenEvents.to_state`: window 100 s, "e1" at ts 0 (aged out by "e3"), "e2" at 50, "e3" at 120.
    earlier = bytes.fromhex(
        "80059567000000000000008c156f70657261746f72732e7365656e5f6576656e7473948c0a5365656e4576656e74739493942981"
        "942847405900000000000047405e000000000000431000000000000049400000000000005e40944310fed135082f0eff78f76c4f"
        "ebcbb745d9947494622e"
    )
    seen = pickle.loads(earlier)

    assert len(seen) == 2
    assert seen.add("e2", ts=50.0) is False
    assert seen.add("e3", ts=120.0) is False
    assert seen.add("e1", ts=0.0) is True
    assert seen.to_state()[:3] == (100.0, 120.0, array("d", [50.0, 120.0, 0.0]).tobytes())
