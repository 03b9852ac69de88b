"""The `skus` parameter of `GET /v1/inventory`: 1..500 distinct, non-empty SKUs."""

from __future__ import annotations

import pytest

from serving.errors import InvalidParameter
from serving.routes.inventory import parse_skus


def test_parse_skus_strips_and_keeps_first_seen_order() -> None:
    assert parse_skus(" B ,A,B, C") == ["B", "A", "C"]


def test_parse_skus_counts_distinct_skus_against_the_limit() -> None:
    skus = [f"SKU-{n}" for n in range(500)]

    assert parse_skus(",".join(skus + skus)) == skus


def test_parse_skus_refuses_501_distinct() -> None:
    with pytest.raises(InvalidParameter, match="at most 500"):
        parse_skus(",".join(f"SKU-{n}" for n in range(501)))


@pytest.mark.parametrize("raw", ["", "  ", "A,,B", "A, ,B", ",A", "A,"])
def test_parse_skus_refuses_empty_items(raw: str) -> None:
    with pytest.raises(InvalidParameter) as refused:
        parse_skus(raw)

    assert refused.value.parameter == "skus"


def test_parse_skus_refuses_overlong_sku() -> None:
    with pytest.raises(InvalidParameter, match="longer than 256"):
        parse_skus("A," + "S" * 257)
