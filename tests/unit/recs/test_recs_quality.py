"""The quality harness runs end to end on a small workload and on a converted public-log CSV."""

from __future__ import annotations

from pathlib import Path

from benchmarks.interactions_csv import RETAILROCKET, Layout, convert, parse_event_map
from benchmarks.recs_quality import METHODS, DocumentStore, K, evaluate, evaluate_sessions
from benchmarks.session_log import next_click_tasks, read_clicks
from state import keys
from state.doc_writer import FencedDoc

RETAILROCKET_ROWS = """timestamp,visitorid,event,itemid,transactionid
1433221332117,257597,view,355908,
1433224214164,992329,view,248676,
1433221999827,111016,view,318965,
1433221955914,483574,view,253185,
1433221337106,257597,view,248676,
1433223236124,257597,addtocart,253185,
1433223999999,257597,transaction,253185,4000
1433224000000,111016,view,248676,
1433224100000,111016,view,253185,
not-a-timestamp,1,view,2,
1433224200000,111016,unknown_event,253185,
"""


def test_harness_metrics_are_well_formed_and_never_out_of_stock() -> None:
    result = evaluate(events=4_000, seed=3, n_skus=200, n_users=150)
    assert result["evaluated"] > 100
    assert set(result["methods"]) == set(METHODS)
    for metrics in result["methods"].values():
        assert metrics["requests"] == result["evaluated"]
        assert 0.0 <= metrics[f"mrr_at_{K}"] <= metrics[f"hit_rate_at_{K}"] <= 1.0
        assert 0.0 <= metrics["catalog_coverage"] <= 1.0
        assert metrics["mean_returned"] <= K
        assert metrics["oos_share"] == 0.0
    assert result["acceptance"]["no_out_of_stock"] is True


def test_retailrocket_log_converts_and_evaluates(tmp_path: Path) -> None:
    source, target = tmp_path / "events.csv", tmp_path / "interactions.csv"
    source.write_text(RETAILROCKET_ROWS)
    assert convert(source, target, RETAILROCKET) == {"written": 9, "skipped": 2}
    lines = target.read_text().splitlines()
    assert lines[0] == "ts,user_or_session,item,event_type"
    assert lines[1] == "1433221332.117,257597,355908,view"  # sorted by time
    assert "1433223236.124,257597,253185,cart" in lines
    assert "1433223999.999,257597,253185,purchase" in lines
    result = evaluate(csv_path=target)
    assert result["interactions"] == 9
    assert result["methods"]["omnistream_blend"]["oos_share"] == 0.0


def test_generic_layout_maps_columns_and_event_names(tmp_path: Path) -> None:
    source, target = tmp_path / "log.csv", tmp_path / "out.csv"
    source.write_text("when,who,what,action\n2026-11-22T00:00:05Z,a,x,click\n2026-11-22T00:00:01Z,a,y,buy\n")
    layout = Layout("when", "who", "what", "action", parse_event_map("click=view,buy=purchase"), "iso")
    assert convert(source, target, layout) == {"written": 2, "skipped": 0}
    assert target.read_text().splitlines()[1:] == ["1795305601.000,a,y,purchase", "1795305605.000,a,x,view"]


def test_a_request_sees_only_documents_written_before_it_and_the_newest_version_of_each() -> None:
    key = keys.rec_trending("global")
    earlier = FencedDoc(key, 1_795_000_000_000, b'[["SKU-1", 1.0, ""]]', as_of=1_795_000_000.0)
    # Written later (its version is the write's event-time ms) though its newest event is older: a throttled list.
    later = FencedDoc(key, 1_795_000_060_000, b'[["SKU-2", 1.0, ""]]', as_of=1_795_000_030.0)
    withdrawn = FencedDoc(keys.rec_item("SKU-1"), 1_795_000_010_000, b"{}", as_of=1_795_000_010.0,
                          flag_set=keys.rec_inactive(), flag_member="SKU-1", flagged=True)  # fmt: skip
    store = DocumentStore([later, withdrawn, earlier])

    store.advance(1_795_000_000.0)
    assert store.scored(key) is None  # written at the request's own time: not yet readable
    store.advance(1_795_000_045.0)
    assert store.scored(key) == (("SKU-1", 1.0, ""),) and store.inactive == {"SKU-1"}
    store.advance(1_795_000_060.5)
    assert store.scored(key) == (("SKU-2", 1.0, ""),)
    assert DocumentStore.final([later, earlier]).scored(key) == (("SKU-2", 1.0, ""),)


def test_a_session_log_is_read_in_time_order_without_its_malformed_rows_and_scored_click_by_click(
    tmp_path: Path,
) -> None:
    train = "SessionId\tItemId\tTime\n" + "".join(
        f"t{n}\tTENT\t{100 + 10 * n}\nt{n}\tSTOVE\t{101 + 10 * n}\n" for n in range(5)
    )
    (tmp_path / "train.tsv").write_text(train + "bad\trow\tnot-a-time\n")
    (tmp_path / "valid.tsv").write_text("SessionId\tItemId\tTime\nv1\tSTOVE\t501\nv1\tTENT\t500\nv1\tPOT\t502\n")

    valid = read_clicks(tmp_path / "valid.tsv")
    assert [c.item for c in valid] == ["TENT", "STOVE", "POT"]  # by time, not by row
    assert len(read_clicks(tmp_path / "train.tsv")) == 10
    assert next_click_tasks(valid) == {0: "STOVE", 1: "POT"}

    result = evaluate_sessions(tmp_path)
    for setting in ("omnistream_blend_seen_exclude", "omnistream_blend_seen_include"):
        deployed = result["scorings"]["next_different"][setting]
        assert deployed["requests"] == 2
        assert deployed[f"hit_rate_at_{K}"] == 0.5  # STOVE after TENT was learned; POT never seen before
