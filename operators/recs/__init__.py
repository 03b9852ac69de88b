"""Recommendations as pure logic: interactions, co-visitation, trending, profiles, experiments, ranking, blending.

No I/O here (docs/architecture.md): the recommend flow feeds these classes events and
writes what they return to Redis; the API fetches the documents named by
`blend.material_plan` and calls `blend.recommend`, the same function the quality
harness (`benchmarks/recs_quality.py`) measures.
"""
