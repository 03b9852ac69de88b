"""The Redis writers' fences, against a real Redis."""

from __future__ import annotations

import orjson
import pytest
import redis

from events.stock import LocationStock, SkuStock
from state import keys
from state.doc_writer import DocWriter, FencedDoc, read_doc
from state.flag_sets import FlagSets
from state.pipeline_scripts import run_pipeline
from state.stock_writer import StockWriter
from state.stream_writer import RECORD_FIELD, StreamWriter

pytestmark = pytest.mark.integration


def _stock(version: int, *locations: tuple[str, int]) -> SkuStock:
    return SkuStock("SKU-1", version, 1.0, tuple(LocationStock(loc, qty, 0, 1.0) for loc, qty in locations))


def _doc(client: redis.Redis) -> dict[str, object]:
    return orjson.loads(client.hget(keys.stock("SKU-1"), keys.STOCK_DOC_FIELD))  # type: ignore[arg-type]


def test_stock_writer_ignores_versions_not_newer_than_stored(redis_client: redis.Redis) -> None:
    writer = StockWriter(redis_client, generation="g1")
    assert writer.write_batch([_stock(5, ("S1", 10))]) == 1
    assert writer.write_batch([_stock(5, ("S1", 99)), _stock(3, ("S1", 98))]) == 0
    assert _doc(redis_client)["total_on_hand"] == 10


def test_stock_writer_keeps_only_the_newest_record_per_sku_of_a_batch(redis_client: redis.Redis) -> None:
    writer = StockWriter(redis_client, generation="g1")
    assert writer.write_batch([_stock(2, ("S1", 2)), _stock(4, ("S1", 4)), _stock(3, ("S1", 3))]) == 1
    assert _doc(redis_client)["total_on_hand"] == 4


def test_stock_writer_of_a_new_lineage_replaces_the_whole_hash(redis_client: redis.Redis) -> None:
    StockWriter(redis_client, generation="old").write_batch([_stock(500, ("S1", 10), ("S2", 20))])

    applied = StockWriter(redis_client, generation="new").write_batch([_stock(1, ("S1", 1))])

    assert applied == 1
    stored = redis_client.hgetall(keys.stock("SKU-1"))
    assert stored[b"version"] == b"1"
    assert set(stored) == {b"generation", b"version", b"doc", b"sellable"}
    assert stored[b"generation"] == b"new"
    assert _doc(redis_client)["total_on_hand"] == 1  # nothing of the old lineage's locations survives
    assert orjson.loads(stored[b"sellable"]) == {"S1": 1}
    # ... nor in the sellable sets: S2 was sellable in the old lineage only.
    assert _members(redis_client, keys.sellable_at("S2")) == set()
    assert _members(redis_client, keys.sellable_at("S1")) == {b"SKU-1"}


def test_stream_writer_adds_each_record_id_once_per_lineage(redis_client: redis.Redis) -> None:
    stream = keys.dlq_stream()
    first = StreamWriter(redis_client, stream, generation="g1")
    assert first.add_batch([("omni.pos/0/1", b'{"n":1}'), ("omni.pos/0/2", b'{"n":2}')]) == 2
    assert first.add_batch([("omni.pos/0/1", b'{"n":1}')]) == 0  # a replay after recovery
    # Topics recreated: offsets start again, and the same position is a new record.
    assert StreamWriter(redis_client, stream, generation="g2").add_batch([("omni.pos/0/1", b'{"n":3}')]) == 1
    bodies = [orjson.loads(fields[RECORD_FIELD.encode()]) for _, fields in redis_client.xrange(stream)]
    assert bodies == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_doc_writer_applies_only_newer_versions_and_the_newest_of_a_batch(redis_client: redis.Redis) -> None:
    writer = DocWriter(redis_client, generation="g1")
    assert writer.write_batch([FencedDoc("omni:test:{a}", 2, b"two"), FencedDoc("omni:test:{a}", 3, b"three")]) == 1
    assert writer.write_batch([FencedDoc("omni:test:{a}", 3, b"replayed"), FencedDoc("omni:test:{a}", 1, b"old")]) == 0
    assert read_doc(redis_client, "omni:test:{a}") == b"three"


def test_doc_writer_sets_a_time_to_live_only_when_asked(redis_client: redis.Redis) -> None:
    writer = DocWriter(redis_client, generation="g1")
    writer.write_batch([FencedDoc("omni:test:{ttl}", 1, b"x", ttl_s=60.0), FencedDoc("omni:test:{kept}", 1, b"y")])
    assert 0 < redis_client.pttl("omni:test:{ttl}") <= 60_000
    assert redis_client.pttl("omni:test:{kept}") == -1


def test_doc_writer_of_a_new_lineage_replaces_a_higher_version(redis_client: redis.Redis) -> None:
    DocWriter(redis_client, generation="old").write_batch([FencedDoc("omni:test:{b}", 900, b"old")])
    assert DocWriter(redis_client, generation="new").write_batch([FencedDoc("omni:test:{b}", 1, b"new")]) == 1
    assert read_doc(redis_client, "omni:test:{b}") == b"new"


def _members(client: redis.Redis, key: str) -> set[bytes]:
    return client.smembers(key)  # type: ignore[return-value]


def test_stock_writer_keeps_positive_sellable_sets_per_location_and_anywhere(redis_client: redis.Redis) -> None:
    writer = StockWriter(redis_client, generation="g1")
    writer.write_batch([_stock(1, ("S1", 3), ("S2", 0))])
    assert _members(redis_client, keys.sellable_at("S1")) == {b"SKU-1"}
    assert _members(redis_client, keys.sellable_at("S2")) == set()
    assert _members(redis_client, keys.sellable_anywhere()) == {b"SKU-1"}

    writer.write_batch([_stock(2, ("S1", 0), ("S2", 0))])  # sold out everywhere
    assert _members(redis_client, keys.sellable_at("S1")) == set()
    assert _members(redis_client, keys.sellable_anywhere()) == set()


def test_stock_writer_stale_version_does_not_touch_sellable_sets(redis_client: redis.Redis) -> None:
    writer = StockWriter(redis_client, generation="g1")
    writer.write_batch([_stock(5, ("S1", 0))])
    assert writer.write_batch([_stock(4, ("S1", 7))]) == 0  # a replayed, older version
    assert _members(redis_client, keys.sellable_at("S1")) == set()
    assert _members(redis_client, keys.sellable_anywhere()) == set()


def test_stock_writer_moves_a_sku_between_sellable_sets_as_its_locations_change(redis_client: redis.Redis) -> None:
    writer = StockWriter(redis_client, generation="g1")
    writer.write_batch([_stock(1, ("S1", 3), ("S2", 4))])
    writer.write_batch([_stock(2, ("S1", 2), ("S2", 1))])  # counts moved, sellable everywhere still
    writer.write_batch([_stock(3, ("S2", 0), ("S3", 5))])  # S1 no longer held, S2 sold out, S3 new
    assert _members(redis_client, keys.sellable_at("S1")) == set()
    assert _members(redis_client, keys.sellable_at("S2")) == set()
    assert _members(redis_client, keys.sellable_at("S3")) == {b"SKU-1"}
    assert _members(redis_client, keys.sellable_anywhere()) == {b"SKU-1"}


def test_stock_writer_sets_up_sellable_sets_over_a_hash_written_without_a_sellable_map(
    redis_client: redis.Redis,
) -> None:
    # A hash an earlier release wrote (no sellable map beside it): every location is set explicitly.
    redis_client.hset(keys.stock("SKU-1"), mapping={"generation": "g1", "version": 1, "doc": "{}"})
    redis_client.sadd(keys.sellable_at("S1"), "SKU-1")
    redis_client.sadd(keys.sellable_anywhere(), "SKU-1")
    assert StockWriter(redis_client, generation="g1").write_batch([_stock(2, ("S1", 0))]) == 1
    assert _members(redis_client, keys.sellable_at("S1")) == set()
    assert _members(redis_client, keys.sellable_anywhere()) == set()


def test_stock_writer_writes_batches_larger_than_one_call(redis_client: redis.Redis) -> None:
    stocks = [SkuStock(f"SKU-{n}", 1, 1.0, (LocationStock("S1", n % 2, 0, 1.0),)) for n in range(1, 301)]
    writer = StockWriter(redis_client, generation="g1")
    assert writer.write_batch(stocks) == 300
    assert writer.write_batch(stocks) == 0  # replayed: nothing newer
    assert _members(redis_client, keys.sellable_at("S1")) == {f"SKU-{n}".encode() for n in range(1, 301, 2)}
    assert orjson.loads(redis_client.hget(keys.stock("SKU-300"), keys.DOC_FIELD))["total_on_hand"] == 0  # type: ignore[arg-type]


def test_reserved_stock_is_not_sellable(redis_client: redis.Redis) -> None:
    stock = SkuStock("SKU-1", 1, 1.0, (LocationStock("S1", 2, 2, 1.0),))
    StockWriter(redis_client, generation="g1").write_batch([stock])
    assert _members(redis_client, keys.sellable_at("S1")) == set()


def test_doc_writer_keeps_a_flag_set_in_step_with_the_fenced_document(redis_client: redis.Redis) -> None:
    writer = DocWriter(redis_client, generation="g1")
    flag = "omni:test:flags"
    writer.write_batch([FencedDoc("omni:test:{c}", 2, b"off", flag_set=flag, flag_member="SKU-1", flagged=True)])
    assert redis_client.smembers(flag) == {b"SKU-1"}
    writer.write_batch([FencedDoc("omni:test:{c}", 1, b"on", flag_set=flag, flag_member="SKU-1", flagged=False)])
    assert redis_client.smembers(flag) == {b"SKU-1"}  # the older version did not pass the fence
    writer.write_batch([FencedDoc("omni:test:{c}", 3, b"on", flag_set=flag, flag_member="SKU-1", flagged=False)])
    assert redis_client.smembers(flag) == set()


def _script_exists_calls(client: redis.Redis) -> int:
    stats: dict[str, dict[str, int]] = client.info("commandstats")  # type: ignore[assignment]
    return stats.get("cmdstat_script|exists", {}).get("calls", 0)


def test_writers_load_the_scripts_redis_lost_and_never_ask_whether_they_exist(redis_client: redis.Redis) -> None:
    # A restarted or failed-over Redis has no scripts: the batch is sent again after
    # loading them. And no SCRIPT EXISTS round trip goes before each batch (redis-py's
    # registered scripts send one per pipeline).
    stocks, docs = StockWriter(redis_client, generation="g1"), DocWriter(redis_client, generation="g1")
    stream = StreamWriter(redis_client, keys.alerts_stream(), generation="g1")
    redis_client.script_flush()
    asked_before = _script_exists_calls(redis_client)

    assert stocks.write_batch([_stock(1, ("S1", 3))]) == 1
    assert docs.write_batch([FencedDoc("omni:test:{c}", 1, b"one")]) == 1
    assert stream.add_batch([("a1", b'{"n":1}')]) == 1
    redis_client.script_flush()
    assert stocks.write_batch([_stock(2, ("S1", 4))]) == 1

    assert _doc(redis_client)["total_on_hand"] == 4
    assert read_doc(redis_client, "omni:test:{c}") == b"one"
    assert redis_client.xlen(keys.alerts_stream()) == 1
    assert _script_exists_calls(redis_client) == asked_before


def test_an_error_reply_fails_the_whole_write_batch(redis_client: redis.Redis) -> None:
    # The flow's sink must not count a batch written when part of it was refused.
    redis_client.set("omni:test:{d}", "not a hash")
    docs = DocWriter(redis_client, generation="g1")
    redis_client.script_flush()  # the error is raised after the lost scripts were loaded and the batch sent again

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        docs.write_batch([FencedDoc("omni:test:{e}", 1, b"fine"), FencedDoc("omni:test:{d}", 1, b"refused")])


def test_flag_sets_apply_only_newer_versions_of_a_lineage(redis_client: redis.Redis) -> None:
    flags = FlagSets("g1")
    sellable = keys.sellable_at("S9")

    def write(generation: str, member: str, version: int, flagged: bool) -> None:
        writer = FlagSets(generation)
        run_pipeline(
            redis_client, lambda pipe: writer.queue(pipe, sellable, [(member, version, flagged)]), (flags.script,)
        )

    write("g1", "SKU-1", 5, True)
    write("g1", "SKU-1", 3, False)  # a replay of an older write
    write("g1", "SKU-1", 5, False)  # the same version again changes nothing either
    assert _members(redis_client, sellable) == {b"SKU-1"}
    write("g1", "SKU-1", 6, False)
    assert _members(redis_client, sellable) == set()
    write("g2", "SKU-1", 1, True)  # another lineage: its versions do not compare, it wins
    assert _members(redis_client, sellable) == {b"SKU-1"}
    assert redis_client.hget(keys.flag_versions(sellable), "SKU-1") == b"g2|1"


def test_a_restarted_stock_writer_whose_replay_was_refused_sends_every_flag_next_time(
    redis_client: redis.Redis,
) -> None:
    before = StockWriter(redis_client, generation="g1")
    before.write_batch([_stock(3, ("S1", 5))])
    before.write_batch([_stock(5, ("S1", 0))])
    assert _members(redis_client, keys.sellable_at("S1")) == set()

    after = StockWriter(redis_client, generation="g1")  # a restart: it remembers nothing it sent
    assert after.write_batch([_stock(3, ("S1", 5))]) == 0  # the replay is refused, its flags too
    assert _members(redis_client, keys.sellable_at("S1")) == set()
    # Had it kept the refused write's flags as sent, S1 = 1 would look unchanged and never be sent.
    assert after.write_batch([_stock(6, ("S1", 5))]) == 1
    assert _members(redis_client, keys.sellable_at("S1")) == {b"SKU-1"}
    assert _members(redis_client, keys.sellable_anywhere()) == {b"SKU-1"}
