"""The sharded holders of the recommendation flow: bounded, throttled, versions that only grow."""

from __future__ import annotations

import pickle
import random
from enum import StrEnum

from operators.keyed_shards import ShardRouter
from operators.rec_shards import Shopper, ThrottledShard, next_version
from operators.recs.covisitation import SessionTrail
from operators.recs.experiments import ServedRecord
from operators.recs.interactions import Interaction, InteractionKind
from operators.recs.profile import ShopperProfile
from operators.shard_keys import ShardKeys, shard_of


def basket(_: str) -> list[int]:
    return []


def test_throttled_shard_writes_a_pending_entity_once_its_interval_has_passed() -> None:
    shard: ThrottledShard[list[int]] = ThrottledShard(capacity=10, interval_s=60.0)
    shard.touch("SKU-1", basket, ts=0.0).append(1)
    assert [key for key, _, _ in shard.collect()] == ["SKU-1"]
    shard.touch("SKU-1", basket, ts=30.0).append(2)
    assert list(shard.collect()) == []
    shard.touch("SKU-2", basket, ts=61.0)
    assert sorted(key for key, _, _ in shard.collect()) == ["SKU-1", "SKU-2"]


def test_throttled_shard_writes_in_order_of_first_change_and_stops_at_the_first_not_due() -> None:
    shard: ThrottledShard[list[int]] = ThrottledShard(capacity=10, interval_s=10.0)

    def written(key: str, ts: float) -> list[str]:
        shard.touch(key, basket, ts=ts)
        return [key for key, _, _ in shard.collect()]

    assert written("A", 0.0) == ["A"]
    assert written("B", 1.0) == ["B"]
    shard.touch("B", basket, ts=5.0)
    assert written("A", 6.0) == []  # B and A were written less than 10 s ago
    assert written("C", 12.0) == ["B", "A", "C"]
    shard.touch("A", basket, ts=13.0)  # written at 12: not due before 22
    assert written("B", 14.0) == []  # B is due, but the scan ends at A, changed before it
    assert written("D", 22.0) == ["A", "B", "D"]
    assert list(shard.flush()) == []


def test_throttled_shard_flush_writes_everything_pending() -> None:
    shard: ThrottledShard[list[int]] = ThrottledShard(capacity=10, interval_s=3600.0)
    shard.touch("A", basket, ts=0.0)
    list(shard.collect())
    shard.touch("A", basket, ts=1.0).append(5)
    assert [(key, state) for key, state, _ in shard.flush()] == [("A", [5])]
    assert list(shard.flush()) == []


def test_throttled_shard_stays_within_capacity_and_writes_evicted_pending_state() -> None:
    shard: ThrottledShard[list[int]] = ThrottledShard(capacity=100, interval_s=3600.0)
    for n in range(1000):
        shard.touch(f"SKU-{n}", basket, ts=float(n)).append(n)
        assert len(shard) <= 100
    written = {key for key, _, _ in shard.flush()}
    assert len(written) == 1000  # evicted entities were written on their way out, the rest now


def test_version_of_an_entity_that_comes_back_after_eviction_is_still_newer() -> None:
    shard: ThrottledShard[list[int]] = ThrottledShard(capacity=1, interval_s=0.0)
    shard.touch("A", basket, ts=100.0)
    for _ in range(5):
        shard.touch("A", basket, ts=100.0)
        first_versions = [version for _, _, version in shard.collect()]
    shard.touch("B", basket, ts=101.0)  # evicts A
    list(shard.collect())
    shard.touch("A", basket, ts=102.0)  # A again, state and counter fresh
    ((_, _, again),) = list(shard.collect())
    assert again > max(first_versions)


def test_throttled_shard_survives_pickling_with_its_pending_work() -> None:
    shard: ThrottledShard[list[int]] = ThrottledShard(capacity=10, interval_s=3600.0)
    shard.touch("A", basket, ts=0.0)
    list(shard.collect())
    shard.touch("A", basket, ts=1.0).append(1)
    restored = pickle.loads(pickle.dumps(shard))
    assert [(key, state) for key, state, _ in restored.flush()] == [("A", [1])]


def clock_model(capacity: int, touches: list[str]) -> tuple[list[str], list[str]]:
    """Held keys (oldest first) and evicted keys after `touches`, by the second-chance rule spelled out plainly.

    A new key enters at the back, marked used; a touch of a held key only marks it. When full, the
    front key leaves if unmarked, else it is unmarked and goes to the back, and the scan goes on.
    """
    held: list[list[object]] = []  # [key, used]
    evicted: list[str] = []
    for key in touches:
        found = next((entry for entry in held if entry[0] == key), None)
        if found is not None:
            found[1] = True
            continue
        if len(held) >= capacity:
            while held[0][1]:
                held[0][1] = False
                held.append(held.pop(0))
            evicted.append(str(held.pop(0)[0]))
        held.append([key, True])
    return [str(entry[0]) for entry in held], evicted


def test_full_shard_gives_every_entry_a_second_chance_before_evicting_the_oldest() -> None:
    shard: ThrottledShard[list[int]] = ThrottledShard(capacity=3, interval_s=3600.0)
    for key in "ABC":
        shard.touch(key, basket, ts=0.0)
    shard.touch("D", basket, ts=1.0)  # all three are marked: one full pass unmarks them, then A leaves
    assert shard.keys() == ["B", "C", "D"]
    shard.touch("B", basket, ts=2.0)  # marks B again: a touch does not reorder
    assert shard.keys() == ["B", "C", "D"]
    shard.touch("E", basket, ts=3.0)  # B is spared (unmarked, to the back), C leaves
    assert shard.keys() == ["D", "B", "E"]
    shard.touch("F", basket, ts=4.0)  # D, still marked from its creation, is spared; B is not
    assert shard.keys() == ["E", "D", "F"]
    assert [key for key, _, _ in shard.collect()][:3] == ["A", "C", "B"]  # evicted pending states first


def test_throttled_shard_evicts_in_the_order_of_the_second_chance_rule() -> None:
    rng = random.Random(7)
    for capacity in (1, 2, 5, 16):
        touches = [f"K{rng.randrange(3 * capacity)}" for _ in range(400)]
        shard: ThrottledShard[list[int]] = ThrottledShard(capacity=capacity, interval_s=3600.0)
        for n, key in enumerate(touches):
            shard.touch(key, basket, ts=float(n))
            assert len(shard) <= capacity
        held, evicted = clock_model(capacity, touches)
        assert shard.keys() == held
        written = [key for key, _, _ in shard.collect()]
        assert written[: len(evicted)] == evicted  # each eviction wrote its pending state, in eviction order


def test_throttled_shard_keeps_evicting_in_order_after_a_snapshot() -> None:
    touches = [f"K{n % 7}" for n in range(0, 60, 3)] + [f"K{n}" for n in range(20)]
    shard: ThrottledShard[list[int]] = ThrottledShard(capacity=6, interval_s=0.0)
    for n, key in enumerate(touches[:20]):
        shard.touch(key, basket, ts=float(n))
        list(shard.collect())
    shard = pickle.loads(pickle.dumps(shard))
    for n, key in enumerate(touches[20:], start=20):
        shard.touch(key, basket, ts=float(n))
    assert shard.keys() == clock_model(6, touches)[0]


def test_throttled_shard_loads_a_snapshot_taken_when_its_entries_were_plain_dicts() -> None:
    shard: ThrottledShard[list[int]] = ThrottledShard(capacity=3, interval_s=3600.0)
    for key in "ABCD":
        shard.touch(key, basket, ts=0.0)
    shard.touch("B", basket, ts=2.0)
    # The snapshot of that state before the OrderedDicts: the same attributes, held in plain dicts.
    old = ThrottledShard.__new__(ThrottledShard)
    old.__dict__.update(vars(shard), _entries=dict(shard._entries), _pending=dict(shard._pending))
    snapshot = pickle.dumps(old, protocol=pickle.HIGHEST_PROTOCOL)
    assert b"OrderedDict" not in snapshot
    restored: ThrottledShard[list[int]] = pickle.loads(snapshot)
    assert restored.keys() == ["B", "C", "D"]
    restored.touch("E", basket, ts=3.0)
    restored.touch("F", basket, ts=4.0)
    assert restored.keys() == ["E", "D", "F"]  # the same order as the shard that was never pickled
    assert [key for key, _, _ in restored.collect()][:3] == ["A", "C", "B"]


def test_next_version_grows_with_event_time_and_per_write() -> None:
    assert next_version(0, 10.0) == 10_000
    assert next_version(10_000, 10.0) == 10_001
    assert next_version(10_001, 5.0) == 10_002  # a late clock never rewinds it


def test_shard_keys_match_shard_of_and_stay_bounded() -> None:
    keys = ShardKeys("nb/", 8, max_cached=10)
    for n in range(100):
        assert keys(f"SKU-{n}") == "nb/" + shard_of(f"SKU-{n}", 8)
    assert len(keys._memo) <= 10


class _Stage(StrEnum):
    NEIGHBOURS = "neighbours"
    TRENDING = "trending"


def test_shard_router_places_entities_as_shard_of_does_and_its_memo_stays_bounded() -> None:
    router: ShardRouter[_Stage, int] = ShardRouter(8, max_cached=10)
    for n in range(100):
        router.add(_Stage.NEIGHBOURS, f"SKU-{n}", n)
    batches = router.drain()
    assert {item: batch.shard for batch in batches for item in batch.items} == {
        n: "neighbours:" + shard_of(f"SKU-{n}", 8) for n in range(100)
    }
    assert {batch.stage for batch in batches} == {_Stage.NEIGHBOURS}
    assert router.shard_of(_Stage.TRENDING, "SKU-1") == "trending:" + shard_of("SKU-1", 8)  # per stage
    assert all(len(memo) <= 10 for memo in router._memos.values())


def _shopper() -> Shopper:
    return Shopper("u:U-1", ShopperProfile("u:U-1", dedup_window_s=1.0), SessionTrail(dedup_window_s=1.0))


def _view(event_id: str, sku: str, ts: float, rec_request_id: str | None = None) -> Interaction:
    return Interaction(event_id, ts, "u:U-1", "s:S-1", sku, InteractionKind.VIEW, "web", None, "toys", rec_request_id)


def test_shopper_drops_a_redelivered_event_for_every_part() -> None:
    shopper = _shopper()
    assert shopper.learn_one(_view("e1", "SKU-1", 0.0)) is not None
    assert shopper.learn_one(_view("e1", "SKU-1", 0.0)) is None
    assert [entry[0] for entry in shopper.profile.get()["recent"]] == ["SKU-1"]


def test_shopper_counts_a_click_on_a_served_answer_once() -> None:
    shopper = _shopper()
    served = ServedRecord("r1", "blend", "u:U-1", 0.0, (("SKU-2", {"covisit": 1.0}),))
    assert [(t.counter, t.n) for t in shopper.learn_served(served)] == [("requests", 1), ("impressions", 1)]
    learned = shopper.learn_one(_view("e2", "SKU-2", 5.0, rec_request_id="r1"))
    assert learned is not None
    assert [(t.counter, t.n) for t in learned[1]] == [("clicks", 1)]
    assert shopper.learn_one(_view("e2", "SKU-2", 5.0, rec_request_id="r1")) is None
