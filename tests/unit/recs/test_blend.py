from __future__ import annotations

from operators.recs.blend import (
    RecMaterial,
    RecRequest,
    candidate_skus,
    followup_plan,
    material_plan,
    recommend,
)
from operators.recs.experiments import Variant
from operators.recs.profile import ProfileDoc

NEIGHBOURS = {
    "SKU-1": [("SKU-2", 5.0, "toys"), ("SKU-3", 4.0, "toys"), ("SKU-4", 3.0, "books"), ("SKU-1", 9.0, "toys")],
    "SKU-7": [("SKU-8", 2.0, "garden")],
}
TRENDING = {
    "global": [("SKU-50", 100.0, "grocery"), ("SKU-2", 1.0, "toys")],
    "loc:STORE-01": [("SKU-60", 10.0, "grocery"), ("SKU-61", 9.0, "grocery")],
    "cat:garden": [("SKU-9", 3.0, "garden")],
}
EVERYTHING = {f"SKU-{n}" for n in range(100)}


def profile(actor: str, recent: list[tuple[str, int, float, str]], categories: dict[str, float]) -> ProfileDoc:
    return {"actor": actor, "recent": recent, "categories": categories, "as_of": 10.0}


def material(sellable: set[str] = EVERYTHING, profiles: dict[str, ProfileDoc] | None = None) -> RecMaterial:
    return RecMaterial(profiles or {}, NEIGHBOURS, TRENDING, None, sellable)


def skus(request: RecRequest, m: RecMaterial, variant: Variant | None = None, k: int = 10) -> list[str]:
    return [item.sku for item in recommend(request, m, variant or Variant("v"), k)]


def test_never_the_request_sku_nor_anything_outside_sellable() -> None:
    sellable = {"SKU-1", "SKU-3", "SKU-50"}
    out = skus(RecRequest(sku="SKU-1"), material(sellable))
    assert out == ["SKU-3", "SKU-50"]


def test_cold_start_gets_the_location_then_everywhere() -> None:
    out = skus(
        RecRequest(location_id="STORE-01"),
        material(),
        Variant("v", weights={"trending_location": 1.0, "trending_global": 0.5}),
    )
    assert out[:2] == ["SKU-60", "SKU-61"]
    assert "SKU-50" in out
    assert skus(RecRequest(), material()) == ["SKU-50", "SKU-2"]


def test_recent_profile_items_anchor_candidates_and_name_the_reason() -> None:
    shopper = profile("u:U-1", [("SKU-7", 1, 9.0, "garden")], {"garden": 3.0})
    items = recommend(RecRequest(user_id="U-1"), material(profiles={"u:U-1": shopper}), Variant("v"), 3)
    assert [(i.sku, i.reason) for i in items[:2]] == [("SKU-8", "co_visitation"), ("SKU-9", "session_category")]
    assert all(0.0 <= value <= 1.0 for item in items for value in item.features.values())


def test_category_cap_diversifies_but_still_fills_k() -> None:
    out = recommend(RecRequest(sku="SKU-1"), material(), Variant("v", category_cap=1), 4)
    categories = [item.sku for item in out]
    assert categories[:3] == ["SKU-2", "SKU-4", "SKU-50"]  # one toy, one book, one grocery first
    assert len(out) == 4


def test_ranker_reorders_when_the_variant_uses_it() -> None:
    ranker = {"version": 3, "intercept": 0.0, "weights": {"covisit": -5.0, "trending_global": 5.0}}
    m = material()._replace(ranker=ranker)
    assert skus(RecRequest(sku="SKU-1"), m, Variant("v"))[0] == "SKU-2"
    assert skus(RecRequest(sku="SKU-1"), m, Variant("r", use_ranker=True))[0] == "SKU-50"


def test_answers_are_deterministic_and_k_bounded() -> None:
    request = RecRequest("U-1", "S-1", "SKU-1", "STORE-01", "web")
    assert skus(request, material(), k=3) == skus(request, material(), k=3)
    assert len(skus(request, material(), k=3)) == 3
    assert skus(request, material(), k=0) == []


def test_plans_name_what_to_fetch_in_two_round_trips() -> None:
    request = RecRequest("U-1", "S-1", "SKU-1", None, "app")
    first = material_plan(request)
    assert first.profiles == ["u:U-1", "s:S-1"] and first.neighbours == ["SKU-1"]
    assert first.trending == ["ch:app", "global"]
    shopper = profile("s:S-1", [("SKU-7", 1, 9.0, "garden")], {"garden": 1.0})
    round_one = RecMaterial({"s:S-1": shopper}, {"SKU-1": NEIGHBOURS["SKU-1"]}, {}, None, EVERYTHING)
    second = followup_plan(request, round_one)
    assert second.neighbours == ["SKU-7"]
    assert "cat:garden" in second.trending and "cat:toys" in second.trending  # the current SKU's category too
    assert set(candidate_skus(request, material(profiles={"s:S-1": shopper}))) >= {"SKU-2", "SKU-8", "SKU-50"}
    assert "SKU-1" not in candidate_skus(request, material())


def test_malformed_profile_documents_do_not_crash() -> None:
    broken: ProfileDoc = {"actor": "u:U-1", "recent": [], "categories": {"toys": -1.0}, "as_of": 0.0}
    assert skus(RecRequest(user_id="U-1"), material(profiles={"u:U-1": broken})) == ["SKU-50", "SKU-2"]


def test_garbled_profile_entries_are_skipped() -> None:
    garbled = {"actor": "u:U-1", "recent": [["SKU-7"], None, ["SKU-7", "x", 1.0, "garden"], ["SKU-7", 1, 2.0, None]],
               "categories": {"garden": "lots", "toys": 1.0}, "as_of": 0.0}  # fmt: skip
    out = skus(RecRequest(user_id="U-1"), material(profiles={"u:U-1": garbled}))  # type: ignore[dict-item]
    assert out[0] == "SKU-8"  # the one well-formed recent entry anchors co-visitation


def test_cold_start_puts_everything_trending_at_the_location_before_what_trends_elsewhere() -> None:
    material = RecMaterial(
        profiles={},
        neighbours={},
        trending={
            "loc:STORE-2": [("SKU-E", 6.0, "a"), ("SKU-F", 2.0, "b")],
            "global": [("SKU-A", 9.0, "c"), ("SKU-E", 6.0, "a"), ("SKU-F", 2.0, "b")],
        },
        ranker=None,
        sellable={"SKU-A", "SKU-E", "SKU-F"},
    )
    items = recommend(RecRequest(user_id="U-new", location_id="STORE-2"), material, Variant("v"), 3)
    assert [i.sku for i in items] == ["SKU-E", "SKU-F", "SKU-A"]
    assert [i.reason for i in items] == ["trending_location", "trending_location", "trending_global"]
    assert all(0.0 <= i.score <= 1.0 for i in items)


def test_a_known_product_page_is_not_a_cold_start() -> None:
    material = RecMaterial(
        profiles={},
        neighbours={"SKU-1": [("SKU-2", 1.0, "a")]},
        trending={"loc:S": [("SKU-3", 9.0, "b")], "global": []},
        ranker=None,
        sellable={"SKU-2", "SKU-3"},
    )
    items = recommend(RecRequest(sku="SKU-1", location_id="S"), material, Variant("v"), 2)
    assert items[0].sku == "SKU-2" and items[0].reason == "co_visitation"


def test_trail_and_profile_leave_redeliveries_to_the_caller_when_their_window_is_zero() -> None:
    from operators.recs.covisitation import SessionTrail
    from operators.recs.interactions import Interaction, InteractionKind
    from operators.recs.profile import ShopperProfile

    def view(event_id: str, ts: float, sku: str) -> Interaction:
        return Interaction(event_id, ts, "u:U-1", "s:S-1", sku, InteractionKind.VIEW, "web", None, "toys")

    trail, profile = SessionTrail(dedup_window_s=0), ShopperProfile("u:U-1", dedup_window_s=0)
    for interaction in (view("e1", 0.0, "SKU-1"), view("e2", 1.0, "SKU-2")):
        trail.learn_one(interaction)
        profile.learn_one(interaction)
    assert trail.learn_one(view("e2", 1.0, "SKU-2")) != []  # counted again: no window of its own
    assert [entry[0] for entry in profile.get()["recent"]] == ["SKU-2", "SKU-1"]


def test_the_session_knn_list_is_a_source_filtered_like_the_others() -> None:
    shopper = profile("s:S-1", [("SKU-1", 1, 9.0, "toys")], {})
    similar = {"s:S-1": [("SKU-1", 3.0, ""), ("SKU-70", 2.0, ""), ("SKU-71", 1.5, ""), ("SKU-72", 1.0, "")]}
    base = RecMaterial({"s:S-1": shopper}, NEIGHBOURS, TRENDING, None, EVERYTHING - {"SKU-72"}, similar)
    request = RecRequest(session_id="S-1", sku="SKU-1")
    assert material_plan(request).similar == ["s:S-1"]
    assert {"SKU-70", "SKU-71", "SKU-72"} <= candidate_skus(request, base)
    items = recommend(request, base, Variant("v", weights={"similar": 3.0, "covisit": 1.0}), 10)
    assert [(i.sku, i.reason) for i in items[:2]] == [("SKU-70", "similar_shoppers"), ("SKU-71", "similar_shoppers")]
    returned = [i.sku for i in items]
    assert "SKU-1" not in returned and "SKU-72" not in returned  # the page's SKU (seen=exclude) and no stock
    assert "SKU-2" in returned  # co-visitation still adds its candidates
