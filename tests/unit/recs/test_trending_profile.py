from __future__ import annotations

import pickle

from operators.recs.decay import DecayedScores
from operators.recs.interactions import Interaction, InteractionKind
from operators.recs.profile import ShopperProfile
from operators.recs.trending import Trending, scopes_of


def test_trending_prefers_what_sold_lately() -> None:
    trending = Trending(half_life_s=3_600.0)
    for n in range(10):
        trending.learn_one("LAST-WEEK", 1.0, ts=float(n), category="toys")
    for n in range(3):
        trending.learn_one("THIS-MORNING", 1.0, ts=7 * 86_400.0 + n, category="toys")
    assert [sku for sku, _, _ in trending.top(2, now=7 * 86_400.0 + 3)] == ["THIS-MORNING", "LAST-WEEK"]


def test_trending_is_bounded_and_labels_follow_their_keys() -> None:
    trending = Trending(capacity=20)
    for n in range(5_000):
        trending.learn_one(f"SKU-{n}", 1.0 + (n % 7), ts=float(n), category=f"c{n % 3}")
    assert len(trending) <= 20 + 5
    scores = trending._scores
    assert set(scores.labels) <= set(scores.scores)


def test_decayed_scores_survive_a_long_quiet_gap() -> None:
    scores = DecayedScores(half_life_s=1.0, capacity=5)
    scores.add("A", 1.0, ts=0.0)
    scores.add("B", 1.0, ts=10_000.0)  # far more half-lives than a float exponent holds: rescaled
    assert scores.top(2, now=10_000.0) == [("B", 1.0)]


def test_scopes_without_category_or_location() -> None:
    view = Interaction("e1", 0.0, "s:S-1", "s:S-1", "SKU-1", InteractionKind.VIEW, "web")
    assert scopes_of(view) == ["global", "ch:web"]


def test_profile_is_bounded_and_ignores_redeliveries() -> None:
    profile = ShopperProfile("u:U-1", max_recent=5)
    for n in range(30):
        profile.learn_one(Interaction(f"e{n}", float(n), "u:U-1", "s:S-1", f"SKU-{n}", InteractionKind.VIEW, "web",
                                      None, "toys" if n % 2 else "books"))  # fmt: skip
    doc = profile.get()
    before = pickle.dumps(doc)
    profile.learn_one(Interaction("e29", 29.0, "u:U-1", "s:S-1", "SKU-29", InteractionKind.VIEW, "web", None, "toys"))
    assert pickle.dumps(profile.get()) == before
    assert [entry[0] for entry in doc["recent"]] == [f"SKU-{n}" for n in range(29, 24, -1)]
    assert set(doc["categories"]) == {"toys", "books"}
    assert len(pickle.dumps(profile)) < 4_000
