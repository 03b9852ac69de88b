"""`GET /v1/customers/{id}`'s answer, shaped without parsing the stored document: the same bytes as parsing it."""

from __future__ import annotations

import random
from typing import Any

import orjson

from operators.customers.doc import customer_doc, scores_slot
from operators.customers.population import Population, RankedPopulation, RfmKeys, scores_of
from operators.customers.shard import CustomerShard
from serving.routes.customers import served_customer
from tests.unit.customers.test_customer_shard import CONFIG, DAY_S, buy, tick


def _parsed_answer(doc: bytes, scopes: tuple[str, ...], populations: list[dict[str, Any] | None]) -> bytes:
    """The answer as the route made it before: the document parsed, the scores set, encoded again."""
    body = orjson.loads(doc)
    buckets = body.get("rfm", {}).get("buckets")
    scores: dict[str, object] = {}
    if buckets:
        for scope, population in zip(scopes, populations, strict=True):
            if population is not None:
                scores[scope] = scores_of(population, buckets)
    body.setdefault("rfm", {})["scores"] = scores
    return orjson.dumps(body)


def _population(rng: random.Random, n: int) -> Population:
    population = Population()
    for _ in range(n):
        population.move(None, RfmKeys(rng.randrange(400_000, 400_300), rng.randrange(-40, 40), rng.randrange(60, 160)))
    return population


def test_the_served_document_is_the_parsed_and_encoded_one_byte_for_byte() -> None:
    rng = random.Random(4)
    shard = CustomerShard(CONFIG)
    events = [buy(f"b{n}", rng.uniform(0, 20 * DAY_S), rng.uniform(1, 300), customer=f"C{n % 40}") for n in range(200)]
    shard.apply([*events, tick(25 * DAY_S)])
    world, france = _population(rng, 500), _population(rng, 7)
    docs = {"global": world.to_doc(), "country:FR": france.to_doc()}
    stored = [orjson.dumps(doc) for doc in _documents(shard)]
    stored += [b'{"customer_id":"P1","lifecycle":"prospect","rfm":{"orders":0,"buckets":null},"reasons":[]}',
               b'{"customer_id":"C1","lifecycle":"active"}', b'{"rfm":{"buckets":[1,2,3],"orders":1}}']  # fmt: skip
    assert all(scores_slot(doc) is not None for doc in stored[:-2])  # the flow's documents: no parse
    assert any(b'"buckets":[' in doc for doc in stored)
    for scopes in (("global",), ("global", "country:FR"), ("global", "country:DE")):
        raw = [docs.get(scope) for scope in scopes]
        ranked = [RankedPopulation.from_doc(orjson.loads(orjson.dumps(doc))) if doc else None for doc in raw]
        for doc in stored:
            assert served_customer(doc, scopes, ranked) == _parsed_answer(doc, scopes, raw)


def test_ranked_populations_score_as_the_flows_histograms_do() -> None:
    rng = random.Random(9)
    population = _population(rng, 300)
    ranked = RankedPopulation.from_doc(orjson.loads(orjson.dumps(population.to_doc())))
    for _ in range(500):
        keys = RfmKeys(rng.randrange(399_990, 400_310), rng.randrange(-50, 50), rng.randrange(50, 170))
        assert ranked.scores([keys.recency, keys.frequency, keys.monetary]) == population.scores(keys)


def _documents(shard: CustomerShard) -> list[dict[str, Any]]:
    states = [(f"C{n}", shard.state_of(f"C{n}")) for n in range(40)]
    return [customer_doc(customer, state, CONFIG, 25 * DAY_S) for customer, state in states if state is not None]
