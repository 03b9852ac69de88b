"""Event-time order: what is held, what goes, and what a recovered step remembers."""

from __future__ import annotations

import pickle
import random

from operators.fraud.ordering import EventTimeOrder


def _feed(order: EventTimeOrder, parts: dict[str, list[float]], block: int, now: float) -> list[str]:
    """Every partition delivers `block` entries in turn (entries are `part:ts`); returns what was handed on."""
    out: list[str] = []
    cursors = dict.fromkeys(parts, 0)
    while any(cursors[p] < len(ts) for p, ts in parts.items()):
        for part, times in parts.items():
            taken = times[cursors[part] : cursors[part] + block]
            cursors[part] += block
            if taken:
                entries = [(t, f"{part}:{t}", f"{part}:{t}") for t in taken]
                now += 0.001
                out += order.offer(entries, {part: taken[-1]}, now)
    return out + order.flush()


def test_the_order_is_the_same_however_the_partitions_interleave() -> None:
    rng = random.Random(1)
    parts = {f"p{i}": sorted(rng.uniform(0, 1000) for _ in range(300)) for i in range(4)}
    expected = sorted((t, f"{p}:{t}") for p, times in parts.items() for t in times)
    for block in (1, 7, 50):
        order = EventTimeOrder(idle_s=60.0, idle_batches=1000)
        order.resumed(0.0)
        assert _feed(order, parts, block, now=0.0) == [name for _, name in expected]
        assert order.late == 0 and order.sequence == 1200


def test_an_idle_partition_stops_holding_the_others_back_but_a_stalled_process_does_not() -> None:
    order = EventTimeOrder(idle_s=1.0, idle_batches=3)
    order.resumed(0.0)
    assert order.offer([(1.0, "a", "a1")], {"a": 1.0}, now=0.1) == []  # partitions not heard of may come
    assert order.offer([(2.0, "b", "b2")], {"b": 2.0}, now=0.2) == []
    assert order.offer([(3.0, "a", "a3")], {"a": 3.0}, now=0.3) == []
    assert order.offer([(4.0, "b", "b4")], {"b": 4.0}, now=1.2) == ["a1", "b2", "a3"]  # 1 s and 3 batches on
    # "a" has not delivered for 5.7 s, but only 2 batches came meanwhile (a process starved of CPU): it still counts.
    assert order.offer([(5.0, "b", "b5")], {"b": 5.0}, now=6.0) == []
    assert order.offer([(6.0, "b", "b6")], {"b": 6.0}, now=6.1) == ["b4", "b5", "b6"]  # now it is idle
    assert order.due(now=20.0) == [] and order.held == [] and order.late == 0


def test_a_recovered_step_waits_for_the_partitions_it_knew_and_those_it_did_not() -> None:
    order = EventTimeOrder(idle_s=1.0, idle_batches=4, quiet_s=5.0)
    order.resumed(0.0)
    order.offer([(10.0, "a", "a10")], {"a": 10.0}, now=0.1)
    order.offer([(20.0, "b", "b20")], {"b": 20.0}, now=0.2)
    clone = pickle.loads(pickle.dumps(order))
    clone.resumed(100.0)
    assert clone.held == order.held and clone.sequence == order.sequence
    assert clone.offer([(30.0, "b", "b30")], {"b": 30.0}, now=100.1) == []  # "a" and the unheard may still send
    assert clone.due(now=104.0) == [] and clone.due(now=105.2) != []  # quiet for quiet_s: everything goes


def test_a_partition_read_to_its_end_stops_holding_back_after_idle_s_but_one_with_messages_left_does_not() -> None:
    order = EventTimeOrder(idle_s=0.25, idle_batches=3, quiet_s=5.0)
    order.resumed(0.0)
    assert order.offer([(1.0, "a", "a1")], {"a": 1.0}, now=0.3) == []
    assert order.offer([(2.0, "b", "b2")], {"b": 2.0}, now=0.31) == []
    assert order.offer([(3.0, "a", "a3")], {"a": 3.0}, now=0.32) == ["a1", "b2"]  # "b" is at 2.0
    # A paused stream: "a" and "b" read to their end. Not before idle_s, then at once (not after quiet_s).
    assert order.due(now=0.4, ended={"a", "b"}) == []
    assert order.due(now=0.66, ended={"a", "b"}) == ["a3"]
    # A starved worker: "a" still has messages to read (not ended), so it holds "b" back.
    assert order.offer([(4.0, "b", "b4")], {"b": 4.0}, now=1.0, ended={"b"}) == []
    assert order.due(now=2.0, ended={"b"}) == []
    # "b" was not read to its end at 2.1: its end clock starts afresh when it is again.
    assert order.offer([(5.0, "a", "a5")], {"a": 5.0}, now=2.1, ended={"a"}) == ["b4"]
    assert order.due(now=2.2, ended={"a", "b"}) == [] and order.due(now=2.36, ended={"a", "b"}) == []
    assert order.due(now=2.46, ended={"a", "b"}) == ["a5"]
    assert order.late == 0


def test_without_end_information_a_lone_payment_waits_for_quiet_s() -> None:
    order = EventTimeOrder(idle_s=0.25, idle_batches=1000, quiet_s=5.0)
    order.resumed(0.0)
    order.offer([(1.0, "a", "a1")], {"a": 1.0}, now=0.3)
    order.offer([(2.0, "b", "b2")], {"b": 2.0}, now=0.31)
    assert order.due(now=1.0) == [] and order.due(now=5.32) == ["a1", "b2"]


def test_a_live_partition_read_to_its_end_at_every_batch_still_holds_the_others_back() -> None:
    order = EventTimeOrder(idle_s=0.25, idle_batches=2, quiet_s=5.0)
    order.resumed(0.0)
    order.offer([(100.0, "b", "b100")], {"b": 100.0}, now=0.0, ended={"b"})
    released: list[str] = []
    for i in range(1, 11):  # "a" delivers every 0.1 s and is read to its end after each batch
        released += order.offer([(float(i), "a", f"a{i}")], {"a": float(i)}, now=0.1 * i, ended={"a", "b"})
        released += order.due(now=0.1 * i + 0.05, ended={"a", "b"})
    assert released == [f"a{i}" for i in range(1, 11)] and order.late == 0  # "b" is ahead: it waits
    assert order.due(now=1.0 + 0.3, ended={"a", "b"}) == ["b100"]  # "a" paused for idle_s too


def test_at_a_start_partitions_not_heard_of_hold_back_unless_every_partition_is_read_to_its_end() -> None:
    for all_ended, expected in ((False, []), (True, ["a1"])):
        order = EventTimeOrder(idle_s=0.25, idle_batches=4, quiet_s=5.0)
        order.resumed(0.0)
        assert order.offer([(1.0, "a", "a1")], {"a": 1.0}, now=0.1, ended={"a"}, all_ended=all_ended) == []
        assert order.due(now=0.2, ended={"a"}, all_ended=all_ended) == []
        assert order.due(now=0.4, ended={"a"}, all_ended=all_ended) == expected  # not 5 s later


def test_a_batch_restarts_the_end_clocks_so_a_partition_fetched_a_little_later_still_comes_in_order() -> None:
    order = EventTimeOrder(idle_s=0.25, idle_batches=100, quiet_s=5.0)
    order.resumed(0.0)
    order.offer([(1.0, "a", "a1")], {"a": 1.0}, now=0.0, ended={"a", "b"}, all_ended=True)
    order.offer([(2.0, "b", "b2")], {"b": 2.0}, now=0.01, ended={"a", "b"}, all_ended=True)
    assert order.due(now=0.3, ended={"a", "b"}, all_ended=True) == ["a1", "b2"]  # a pause: both at their end
    # Long after, "a" delivers: "b", at its end for seconds, still holds for idle_s after this batch.
    assert order.offer([(10.0, "a", "a10")], {"a": 10.0}, now=9.0, ended={"a", "b"}, all_ended=True) == []
    assert order.offer([(9.0, "b", "b9")], {"b": 9.0}, now=9.1, ended={"a", "b"}, all_ended=True) == []
    assert order.due(now=9.2, ended={"a", "b"}, all_ended=True) == []
    assert order.due(now=9.4, ended={"a", "b"}, all_ended=True) == ["b9", "a10"] and order.late == 0


def test_equal_times_and_ids_go_in_arrival_order_and_their_items_are_never_compared() -> None:
    # A redelivered event has the time and id of the first delivery; items (payments) need not be comparable.
    class Opaque:
        def __lt__(self, other: object) -> bool:
            raise AssertionError("items must not be compared")

    first, again, other = Opaque(), Opaque(), Opaque()
    order = EventTimeOrder(idle_s=60.0, idle_batches=1000)
    order.resumed(0.0)
    order.offer([(5.0, "e1", first), (4.0, "e0", other)], {"p": 5.0}, now=0.1)
    order.offer([(5.0, "e1", again)], {"p": 5.0}, now=0.2)
    assert order.flush() == [other, first, again]


def test_a_snapshot_taken_before_arrival_numbers_resumes_in_the_same_order() -> None:
    # Until 2026-12-08 held entries were kept as given, (time, id, item), and sorted with a key.
    order = EventTimeOrder(idle_s=60.0, idle_batches=1000)
    state = order.__getstate__()
    state["held"] = [(3.0, "c", "c3"), (1.0, "a", "a1"), (3.0, "c", "c3-again")]
    restored = EventTimeOrder.__new__(EventTimeOrder)
    restored.__setstate__(state)
    restored.resumed(0.0)
    restored.offer([(2.0, "b", "b2"), (3.0, "c", "c3-third")], {"p": 3.0}, now=0.1)
    assert restored.flush() == ["a1", "b2", "c3", "c3-again", "c3-third"]
