"""`state.idempotency`: the one Idempotency-Key store of the reservations and the loyalty redemptions, on real Redis."""

from __future__ import annotations

import asyncio

import orjson
import redis

from serving.idempotency import derived_id, fingerprint
from state import keys
from state.connection import connect_async
from state.idempotency import Claim, IdempotencyStore


async def _race(redis_url: str, name: str, n: int) -> list[tuple[bool, bool, bytes]]:
    client = connect_async(redis_url, timeout_s=5.0)
    try:
        store = IdempotencyStore(client)
        digest = fingerprint(("C1", {"points": 5}))
        claims = await asyncio.gather(*(store.claim(name, digest, f"answer-{i}".encode(), 60.0) for i in range(n)))
        return [(c.first, c.same_request, c.payload) for c in claims]
    finally:
        await client.aclose()


def test_racing_first_uses_of_one_key_one_wins_and_every_other_gets_its_payload(redis_url: str) -> None:
    claims = asyncio.run(_race(redis_url, keys.idempotency("reservations", "race-1"), 20))

    winners = [payload for first, _, payload in claims if first]
    assert len(winners) == 1
    assert all(same and payload == winners[0] for first, same, payload in claims if not first)


async def _claim_twice(redis_url: str, name: str, first: bytes, second: bytes) -> list[Claim]:
    client = connect_async(redis_url, timeout_s=5.0)
    try:
        store = IdempotencyStore(client)
        one = await store.claim(name, first, b"rd_1", 60.0)
        two = await store.claim(name, second, b"rd_2", 60.0)
        await store.release(name)
        three = await store.claim(name, second, b"rd_2", 60.0)
        return [one, two, three]
    finally:
        await client.aclose()


def test_another_request_under_a_used_key_is_told_apart_and_a_released_key_is_claimed_anew(redis_url: str) -> None:
    name = keys.loyalty_idempotency("C1", "k-1")
    one, two, three = asyncio.run(_claim_twice(redis_url, name, b"aaa", b"bbb"))

    assert one == Claim(True, True, b"rd_1")
    assert two == Claim(False, False, b"rd_1")  # the first request's payload, and the news that it was another
    assert three == Claim(True, True, b"rd_2")


async def _retry(redis_url: str, name: str, digest: bytes) -> tuple[bool, bool, bytes]:
    client = connect_async(redis_url, timeout_s=5.0)
    try:
        claim = await IdempotencyStore(client).claim(name, digest, b"ignored", 60.0)
        return claim.first, claim.same_request, claim.payload
    finally:
        await client.aclose()


def test_a_loyalty_record_in_the_older_json_layout_still_answers_its_retry(
    redis_url: str, redis_client: redis.Redis
) -> None:
    body = {"points": 5, "channel": "web", "order_ref": None}
    name = keys.loyalty_idempotency("C7", "old-key")
    redemption_id = derived_id("rd", "C7", "old-key")
    # What the loyalty route stored before it shared the store: its fingerprint was the hex digest of the same parts.
    older = orjson.dumps({"fingerprint": fingerprint(("C7", body)).decode(), "action_id": redemption_id})
    redis_client.set(name, older, px=60_000)

    same = asyncio.run(_retry(redis_url, name, fingerprint(("C7", body))))
    other = asyncio.run(_retry(redis_url, name, fingerprint(("C7", {**body, "points": 6}))))

    assert same == (False, True, redemption_id.encode())
    assert other[:2] == (False, False)
