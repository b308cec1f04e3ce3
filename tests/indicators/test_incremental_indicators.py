"""Incremental indicators: only the institution-weeks late and new rows touch are recomputed, and the result
equals a full recomputation.

The shared hand-made rows (conftest.py, 2026-W01..W14) are extended to 2026-W40 so that recomputing from
W30 starts the grid at W14 and folds W01..W13 (M's orders, refunds and two accounts, R's open overdue
requests, K's open complaints) into the carry rows.
"""

import importlib.util
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from indicators.compute import (
    BALANCES,
    MART,
    SUMS,
    compute_institution_week_indicators,
    refresh_institution_week_indicators,
    touched_weeks,
)
from pipelines.defs.indicators.assets import institution_week_indicators
from pipelines.resources import WarehouseResource
from pipelines.warehouse import connect

# The hand-made rows of this folder's conftest.py, loaded under their own name: `from conftest import` would
# get whichever conftest module pytest imported last when several folders run together.
_spec = importlib.util.spec_from_file_location("indicators_handmade_rows", Path(__file__).with_name("conftest.py"))
handmade = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(handmade)
at, build_handmade, consumption, insert = handmade.at, handmade.build_handmade, handmade.consumption, handmade.insert
movement, order, rating, refund = handmade.movement, handmade.order, handmade.rating, handmade.refund

LAST_WEEK = 40


def extend_to_w40(con) -> None:
    """M sells m4 (10000 fen, 10 hours) in W18: 2 hours in W19, 3 in W21, 1000 refunded in W26; deposit and
    release on its first account; S keeps selling; T rates in W17 (inside the 16 weeks ending at W30), Z until W40."""
    insert(con, "orders", [
        order("m4", "M", at(18, 2), 10_000, class_hours=10),
        *[order(f"s{w}", "S", at(w, 2), 1000 * (1 + w % 3)) for w in range(24, 38)],
    ])
    insert(con, "consumptions", [consumption("c5", "m4", "M", at(19, 4), 2), consumption("c6", "m4", "M", at(21, 4), 3)])
    insert(con, "refunds", [refund("rm4", "M", at(25, 1), 1000, "paid", paid_at=at(26, 2), order_id="m4")])
    insert(con, "account_movements", [
        movement("8", "M", at(18, 2), "deposit", 10_000, 14_500),
        movement("9", "M", at(22, 1), "release", 5_000, 9_500),
    ])
    insert(con, "evaluations", [rating("t17", "T", at(17, 1), 5), rating("t28", "T", at(28, 1), 1), rating("t36", "T", at(36, 1), 4),
                                rating("z40", "Z", at(LAST_WEEK, 7, "23:00"), 5)])


def loaded_now(row: dict) -> dict:
    return row | {"_loaded_at": pd.Timestamp.now(tz="UTC").isoformat()}


@pytest.fixture
def long_warehouse(tmp_path):
    con = connect(tmp_path / "warehouse.duckdb")
    build_handmade(con)
    extend_to_w40(con)
    yield con
    con.close()


def snapshot(con) -> pd.DataFrame:
    return con.execute(f"SELECT * EXCLUDE (_computed_at, _changed_at) FROM {MART} ORDER BY week, institution_id").df()


def stored_sums(con) -> pd.DataFrame:
    return con.execute(f"SELECT * FROM {SUMS} ORDER BY institution_id, week_start").df()


def computed_at(con) -> dict[tuple[str, str], object]:
    return {(i, w): t for i, w, t in con.execute(f"SELECT institution_id, week, _computed_at FROM {MART}").fetchall()}


def full_recomputation(con) -> pd.DataFrame:
    compute_institution_week_indicators(con)
    return snapshot(con)


def value(con, institution_id: str, week: int, name: str) -> float:
    return con.execute(f"SELECT {name} FROM {MART} WHERE institution_id = ? AND week = ?",
                       [institution_id, f"2026-W{week:02d}"]).fetchone()[0]


def test_recomputing_late_weeks_equals_the_full_recomputation(long_warehouse):
    con = long_warehouse
    full = full_recomputation(con)
    assert full["week"].max() == f"2026-W{LAST_WEEK}"
    con.execute(f"DELETE FROM {MART} WHERE week >= '2026-W30'")
    written = compute_institution_week_indicators(con, from_week="2026-W30")
    assert written == len(full[full["week"] >= "2026-W30"])
    pd.testing.assert_frame_equal(snapshot(con), full, check_exact=False, rtol=1e-12)
    # the carry kept what happened before the grid (W14 on): M's liability after the refund cap, open refunds
    assert value(con, "M", 30, "prepaid_liability_fen") == 10_000 - 5_000 - 1_000  # m1, m2 settled; m4 half left
    assert value(con, "R", 30, "overdue_refunds") == 2                             # r10a and r10b never closed
    assert value(con, "T", 30, "rating_drop") == 5 - 1          # W15..W26: t17 (5 stars); W27..W30: t28 (1)


def test_late_row_recomputes_its_institution_from_its_week_only(long_warehouse):
    con = long_warehouse
    first = refresh_institution_week_indicators(con)
    assert first.full and len(first.weeks) == LAST_WEEK
    before, stamps = snapshot(con), computed_at(con)
    assert first.institutions == before["institution_id"].nunique() > 1
    # 2 more hours of m4 taught in W33, delivered now: 2 * 10000 / 10 = 2000 fen less liability from W33 on
    insert(con, "consumptions", [loaded_now(consumption("c7", "m4", "M", at(33, 3), 2))])

    refresh = refresh_institution_week_indicators(con)

    assert not refresh.full and refresh.institutions == 1
    assert refresh.weeks == [f"2026-W{w}" for w in range(33, LAST_WEEK + 1)]
    recomputed = before[(before["week"] >= "2026-W33") & (before["institution_id"] == "M")]
    assert refresh.rows == len(recomputed) == LAST_WEEK - 33 + 1
    after = computed_at(con)
    assert {key for key, t in after.items() if t != stamps[key]} == set(
        zip(recomputed["institution_id"], recomputed["week"]))
    assert all(t > stamps[key] for key, t in after.items() if key[0] == "M" and key[1] >= "2026-W33")
    for week in (32, 33, LAST_WEEK):
        old = before.set_index(["institution_id", "week"]).loc[("M", f"2026-W{week}")]
        delta = -2_000 if week >= 33 else 0
        assert value(con, "M", week, "prepaid_liability_fen") == old["prepaid_liability_fen"] + delta
        assert value(con, "M", week, "release_beyond_consumed_fen") == old["release_beyond_consumed_fen"] + delta
    incremental = snapshot(con)
    pd.testing.assert_frame_equal(incremental, full_recomputation(con), check_exact=False, rtol=1e-12)


def test_a_recomputed_row_keeps_when_its_values_last_changed(long_warehouse):
    """A late cancelled order (it counts in no week) recomputes M from W33 without moving a value there; a late
    class in W36 moves M's liability from W36 on. `_computed_at` moves on every recomputed row, `_changed_at`
    (what scores and warnings follow) only where a value moved."""
    con = long_warehouse
    refresh_institution_week_indicators(con)
    before = snapshot(con)
    stamps = {(i, w): (c, d) for i, w, c, d in con.execute(
        f"SELECT institution_id, week, _computed_at, _changed_at FROM {MART}").fetchall()}
    insert(con, "orders", [loaded_now(order("mx", "M", at(33, 2), 5_000, status="cancelled"))])
    insert(con, "consumptions", [loaded_now(consumption("c7", "m4", "M", at(36, 3), 2))])

    refresh = refresh_institution_week_indicators(con)

    assert refresh.weeks == [f"2026-W{w}" for w in range(33, LAST_WEEK + 1)]
    after = {(i, w): (c, d) for i, w, c, d in con.execute(
        f"SELECT institution_id, week, _computed_at, _changed_at FROM {MART}").fetchall()}
    recomputed = {key for key in after if after[key][0] != stamps[key][0]}
    changed = {key for key in after if after[key][1] != stamps[key][1]}
    assert recomputed == {("M", f"2026-W{w}") for w in range(33, LAST_WEEK + 1)}
    assert changed == {("M", f"2026-W{w}") for w in range(36, LAST_WEEK + 1)}
    assert all(after[key][1] == after[key][0] for key in changed)
    moved = snapshot(con).compare(before)
    assert set(before.loc[moved.index, "week"]) == {f"2026-W{w}" for w in range(36, LAST_WEEK + 1)}


def test_a_new_week_is_computed_for_every_institution_and_late_rows_for_their_own(long_warehouse):
    con = long_warehouse
    refresh_institution_week_indicators(con)
    before, stamps = snapshot(con), computed_at(con)
    # the new week W41: only S sells; M's late consumption of W33 arrives with it
    insert(con, "orders", [loaded_now(order("s41", "S", at(LAST_WEEK + 1, 2), 1000))])
    insert(con, "consumptions", [loaded_now(consumption("c7", "m4", "M", at(33, 3), 2))])

    refresh = refresh_institution_week_indicators(con)

    new_week = f"2026-W{LAST_WEEK + 1}"
    assert refresh.weeks == [f"2026-W{w}" for w in range(33, LAST_WEEK + 2)]
    after = snapshot(con)
    active = set(after.loc[after["week"] == new_week, "institution_id"])
    assert active == set(before.loc[before["week"] == f"2026-W{LAST_WEEK}", "institution_id"]) and len(active) > 2
    restamped = {key for key, t in computed_at(con).items() if key not in stamps or t != stamps[key]}
    assert {key for key in restamped if key[1] != new_week} == {("M", f"2026-W{w}") for w in range(33, LAST_WEEK + 1)}
    assert refresh.rows == len(restamped) and refresh.institutions == after["institution_id"].nunique()
    assert value(con, "M", LAST_WEEK + 1, "orders_feed_silence_weeks") > 0  # silent in W41, its row is there
    sums = stored_sums(con)
    pd.testing.assert_frame_equal(after, full_recomputation(con), check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(sums, stored_sums(con))  # what the next refresh reads is right too


def test_a_refresh_reads_the_look_back_weeks_from_the_stored_sums(long_warehouse):
    """The new week sums only its own rows: the weeks before come from SUMS (here tampered with), not their rows."""
    con = long_warehouse
    refresh_institution_week_indicators(con)
    con.execute(f"UPDATE {SUMS} SET paid_fen = paid_fen + 700 WHERE institution_id = 'S' AND week_start = ?",
                [at(30, 1)[:10]])
    insert(con, "orders", [loaded_now(order("s41", "S", at(LAST_WEEK + 1, 2), 1000))])
    before = value(con, "S", LAST_WEEK, "prepaid_liability_fen")
    refresh_institution_week_indicators(con)
    assert value(con, "S", LAST_WEEK + 1, "prepaid_liability_fen") == before + 1000 + 700
    full_recomputation(con)
    assert value(con, "S", LAST_WEEK + 1, "prepaid_liability_fen") == before + 1000


def test_a_refresh_carries_the_account_balance_from_the_stored_weekly_balances(long_warehouse):
    """The new week's movement on M's account changes the balance from the last stored week's (here tampered
    with: 300 more in W22), not from the earlier movements."""
    con = long_warehouse
    refresh_institution_week_indicators(con)
    con.execute(f"UPDATE {BALANCES} SET balance_after_fen = balance_after_fen + 300 "
                "WHERE account_id = 'ACC-M' AND week_start = ?", [at(22, 1)[:10]])
    insert(con, "account_movements", [loaded_now(movement("10", "M", at(LAST_WEEK + 1, 2), "deposit", 100, 9_600))])
    before = value(con, "M", LAST_WEEK, "supervised_balance_fen")
    refresh_institution_week_indicators(con)
    assert value(con, "M", LAST_WEEK + 1, "supervised_balance_fen") == before + 100 - 300
    full_recomputation(con)
    assert value(con, "M", LAST_WEEK + 1, "supervised_balance_fen") == before + 100


def test_nothing_loaded_recomputes_nothing(long_warehouse):
    con = long_warehouse
    refresh_institution_week_indicators(con)
    stamps = computed_at(con)
    refresh = refresh_institution_week_indicators(con)
    assert (refresh.rows, refresh.weeks, refresh.full) == (0, [], False)
    assert computed_at(con) == stamps


def test_correction_recomputes_from_the_superseded_version_week(long_warehouse):
    con = long_warehouse
    refresh_institution_week_indicators(con)
    # movement 9 was booked in W22; a correction moves it to W35: W22 changes too (its release disappears)
    correct(con, "account_movements", "movement_id", "9", booked_at=at(35, 1))
    assert touched_weeks(con, con.execute(f"SELECT max(_computed_at) FROM {MART}").fetchone()[0]) == {"M": "2026-W22"}
    refresh = refresh_institution_week_indicators(con)
    assert refresh.weeks[0] == "2026-W22"
    assert value(con, "M", 22, "supervised_balance_fen") == 14_500 + 1_000   # the W18 deposit; ACC2's 1000
    pd.testing.assert_frame_equal(snapshot(con), full_recomputation(con), check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("older", [f"ALTER TABLE {MART} DROP COLUMN _computed_at", f"DROP TABLE {SUMS}",
                                   f"ALTER TABLE {SUMS} DROP COLUMN low_ratings", f"DROP TABLE {BALANCES}"])
def test_mart_from_older_code_is_recomputed_whole(long_warehouse, older):
    con = long_warehouse
    compute_institution_week_indicators(con)
    con.execute(older)
    refresh = refresh_institution_week_indicators(con)
    assert refresh.full and len(refresh.weeks) == LAST_WEEK


def test_asset_reports_a_rerun_without_new_rows_as_empty(long_warehouse, tmp_path):
    long_warehouse.close()
    resources = {"duckdb": WarehouseResource(database=str(tmp_path / "warehouse.duckdb"))}
    metadata = []
    for _ in range(2):
        result = dg.materialize([institution_week_indicators], resources=resources)
        metadata.append(result.asset_materializations_for_node("institution_week_indicators")[0].metadata)
    assert [m["mode"].value for m in metadata] == ["full", "incremental"]
    assert [m["weeks_recomputed"].value for m in metadata] == [LAST_WEEK, 0]
    assert metadata[0]["institutions_recomputed"].value == metadata[0]["institutions"].value > 0
    assert metadata[1]["institutions_recomputed"].value == 0
    assert metadata[1]["weeks"].value == LAST_WEEK


def correct(con, table: str, key: str, value: str, **changes) -> None:
    """A correction as ingestion records it: the old version to history, superseded now; the new one loaded now."""
    con.execute(f"INSERT INTO staging.{table}_history SELECT *, now() FROM staging.{table} WHERE {key} = ?", [value])
    assignments = ", ".join(f"{column} = ?" for column in changes)
    con.execute(f"UPDATE staging.{table} SET {assignments}, _loaded_at = now() WHERE {key} = ?",
                [*changes.values(), value])


def test_resolution_recomputes_from_the_resolution_not_the_complaint(long_warehouse):
    con = long_warehouse
    refresh_institution_week_indicators(con)
    since = con.execute(f"SELECT max(_computed_at) FROM {MART}").fetchone()[0]
    # k0 (received in W05, open) is resolved in W35: only the weeks from W35 can change
    correct(con, "complaints", "complaint_id", "k0", status="resolved", resolved_at=at(35, 2))
    assert touched_weeks(con, since) == {"K": "2026-W35"}
    # its category corrected as well: the complaint's own week counts again (closure keywords in W05)
    correct(con, "complaints", "complaint_id", "k0", category="closure_or_absconding")
    assert touched_weeks(con, since) == {"K": "2026-W05"}
    refresh_institution_week_indicators(con)
    pd.testing.assert_frame_equal(snapshot(con), full_recomputation(con), check_exact=False, rtol=1e-12)


def test_chunks_of_institutions_give_the_mart_of_one_piece(long_warehouse, monkeypatch):
    """A national history is computed a hash-chunk of institutions at a time; the values are the same."""
    import indicators.compute as compute

    con = long_warehouse
    whole = full_recomputation(con)
    feed_rows = con.execute("SELECT (SELECT count(*) FROM staging.consumptions) "
                            "+ (SELECT count(*) FROM staging.account_movements)").fetchone()[0]
    monkeypatch.setattr(compute, "CHUNK_FEED_ROWS", max(1, feed_rows // 3))
    assert compute.institution_chunks(con) >= 3
    chunked = full_recomputation(con)
    assert chunked["institution_id"].nunique() == whole["institution_id"].nunique() >= 3
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
    # and the recomputation of late weeks, chunk by chunk, against the whole
    con.execute(f"DELETE FROM {MART} WHERE week >= '2026-W30'")
    compute_institution_week_indicators(con, from_week="2026-W30")
    pd.testing.assert_frame_equal(snapshot(con), whole, check_exact=False, rtol=1e-12)
