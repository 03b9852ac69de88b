"""The members of a cluster spread over hosts meet in Redis before they start (`state.recovery_rendezvous`).

Every member must see the same rows, and rows of *this* start: a member still marked running
from an earlier start holds the others back until it publishes again.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest
import redis

from state.recovery_rendezvous import RecoveryRendezvous, RendezvousTimeout

pytestmark = pytest.mark.integration


def _agree_in_thread(meeting: RecoveryRendezvous, member: int, rows: Any, out: dict[int, Any]) -> threading.Thread:
    def run() -> None:
        out[member] = meeting.agree(member, rows, timeout_s=10.0, poll_s=0.01)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_members_get_the_union_of_everyone_s_rows(redis_client: redis.Redis) -> None:
    meeting = RecoveryRendezvous(redis_client, "inventory", "g1", processes=2)
    zero = {"executions": [[0, 2, 0], [1, 2, 3]], "fronts": [[1, 0, 5]]}
    one = {"executions": [[0, 2, 0]], "fronts": [[0, 1, 3], [1, 1, 4]]}
    out: dict[int, Any] = {}
    threads = [_agree_in_thread(meeting, 0, zero, out), _agree_in_thread(meeting, 1, one, out)]
    for thread in threads:
        thread.join(15)
    assert (
        out[0]
        == out[1]
        == {
            "executions": [[0, 2, 0], [1, 2, 3]],
            "fronts": [[0, 1, 3], [1, 0, 5], [1, 1, 4]],
        }
    )


def test_a_member_still_marked_running_from_an_earlier_start_is_waited_for(redis_client: redis.Redis) -> None:
    meeting = RecoveryRendezvous(redis_client, "inventory", "g2", processes=2)
    earlier = {"executions": [[0, 2, 0]], "fronts": []}
    # The last start: both met on these rows and ran; member 1 is still marked so.
    redis_client.hset(meeting.key, "1", orjson.dumps({"state": "running", "round": 1, "rows": earlier}))
    now = {"executions": [[0, 2, 0], [1, 2, 7]], "fronts": [[1, 0, 9]]}
    out: dict[int, Any] = {}
    waiting = _agree_in_thread(meeting, 0, now, out)
    waiting.join(0.5)
    assert waiting.is_alive() and 0 not in out  # member 1's entry is of another start: wait for it
    fresh = {"executions": [[1, 2, 7]], "fronts": [[1, 1, 8]]}
    assert meeting.agree(1, fresh, timeout_s=10.0, poll_s=0.01) == {
        "executions": [[0, 2, 0], [1, 2, 7]],
        "fronts": [[1, 0, 9], [1, 1, 8]],
    }
    waiting.join(10)
    assert out[0]["fronts"] == [[1, 0, 9], [1, 1, 8]]


def test_a_member_whose_rows_did_not_change_still_waits_for_the_others_of_this_start(
    redis_client: redis.Redis,
) -> None:
    """Its share holds no bookkeeping rows (Bytewax wrote them all elsewhere): its rows are the same as at the
    last start, and the others' entries of that start must not pass for this one's (a cluster test hung so,
    one member gone on with the others' old rows, the other waiting for it)."""
    meeting = RecoveryRendezvous(redis_client, "inventory", "g4", processes=2)
    empty: dict[str, list[Any]] = {"executions": [], "fronts": []}
    for member in ("0", "1"):
        redis_client.hset(meeting.key, member, orjson.dumps({"state": "running", "round": 1, "rows": empty}))
    out: dict[int, Any] = {}
    waiting = _agree_in_thread(meeting, 1, empty, out)
    waiting.join(0.5)
    assert waiting.is_alive() and 1 not in out
    written = {"executions": [[0, 2, 0]], "fronts": [[0, 0, 4], [0, 1, 4]]}
    assert meeting.agree(0, written, timeout_s=10.0, poll_s=0.01) == written
    waiting.join(10)
    assert out[1] == written


def test_a_member_that_never_comes_ends_the_wait(redis_client: redis.Redis) -> None:
    meeting = RecoveryRendezvous(redis_client, "inventory", "g3", processes=3)
    with pytest.raises(RendezvousTimeout, match="3 members"):
        meeting.agree(0, {"executions": [], "fronts": []}, timeout_s=0.2, poll_s=0.01)
