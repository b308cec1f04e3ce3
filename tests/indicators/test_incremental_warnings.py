"""Incremental warnings: a week is rebuilt when its indicators or scores changed since its last build, the
week after it is stamped too (its `change` compares against it), and the result equals a full rebuild."""

import pandas as pd
from test_incremental_indicators import (  # noqa: F401 (long_warehouse is a fixture)
    LAST_WEEK,
    MART,
    at,
    consumption,
    insert,
    loaded_now,
    long_warehouse,
    movement,
)

from indicators.compute import compute_institution_week_indicators, refresh_institution_week_indicators
from indicators.rules import build_warnings, first_listed_week, refresh_warnings

ALL_WEEKS = [f"2026-W{w:02d}" for w in range(1, LAST_WEEK + 1)]


def builds(con) -> dict[str, object]:
    return dict(con.execute("SELECT week, built_at FROM ops.week_builds").fetchall())


def warnings_table(con) -> pd.DataFrame:
    return con.execute("SELECT * FROM marts.warnings ORDER BY week, institution_id").df()


def drops_table(con) -> pd.DataFrame:
    return con.execute("SELECT * FROM marts.warning_drops ORDER BY week, institution_id").df()


def add_scores(con, rows: list[tuple[str, str, float]], with_scored_at: bool = True) -> None:
    scored_at = ", _scored_at TIMESTAMPTZ DEFAULT now()" if with_scored_at else ""
    con.execute("CREATE TABLE IF NOT EXISTS marts.institution_week_scores (institution_id VARCHAR, week VARCHAR, "
                f"model_name VARCHAR, model_version VARCHAR, score DOUBLE, contributions JSON{scored_at})")
    for institution_id, week, score in rows:
        con.execute("INSERT INTO marts.institution_week_scores (institution_id, week, model_name, model_version, "
                    "score, contributions) VALUES (?, ?, 'hgb', 'v1', ?, '[]')", [institution_id, week, score])


def test_first_refresh_builds_every_week_and_a_rerun_nothing(long_warehouse):  # noqa: F811
    con = long_warehouse
    refresh_institution_week_indicators(con)
    rows, stamped = refresh_warnings(con)
    assert stamped == ALL_WEEKS
    assert rows == con.execute("SELECT count(*) FROM marts.warnings").fetchone()[0] > 0
    first = builds(con)
    assert refresh_warnings(con) == (0, [])
    assert builds(con) == first


def test_late_row_rebuilds_its_weeks_and_equals_a_full_rebuild(long_warehouse):  # noqa: F811
    con = long_warehouse
    refresh_institution_week_indicators(con)
    refresh_warnings(con)
    before = builds(con)
    insert(con, "consumptions", [loaded_now(consumption("c7", "m4", "M", at(33, 3), 2))])
    refresh_institution_week_indicators(con)                      # recomputes W33..W40

    _, stamped = refresh_warnings(con)

    assert stamped == ALL_WEEKS[32:]
    after = builds(con)
    assert all(after[w] == before[w] for w in ALL_WEEKS[:32])
    assert all(after[w] > before[w] for w in ALL_WEEKS[32:])
    incremental, incremental_drops = warnings_table(con), drops_table(con)
    build_warnings(con)
    pd.testing.assert_frame_equal(incremental, warnings_table(con))
    pd.testing.assert_frame_equal(incremental_drops, drops_table(con))
    assert len(incremental_drops) > 0  # rows dropped out of some lists: the comparison has something to compare


def test_new_score_rebuilds_its_week_and_stamps_the_next(long_warehouse):  # noqa: F811
    con = long_warehouse
    compute_institution_week_indicators(con)
    refresh_warnings(con)
    before = builds(con)
    # a model score of 0.6 (>= the model's red cut-off 0.5) for S in W20: S is listed red in W20
    add_scores(con, [("S", "2026-W20", 0.6)])

    _, stamped = refresh_warnings(con)

    assert stamped == ["2026-W20", "2026-W21"]
    assert all(builds(con)[w] == before[w] for w in ALL_WEEKS if w not in stamped)
    assert con.execute("SELECT tier FROM marts.warnings WHERE institution_id = 'S' AND week = '2026-W20'"
                       ).fetchall() == [("red",)]


def test_scores_without_scored_at_rebuild_every_week(long_warehouse):  # noqa: F811
    con = long_warehouse
    compute_institution_week_indicators(con)
    refresh_warnings(con)
    add_scores(con, [("S", "2026-W20", 0.6)], with_scored_at=False)
    assert refresh_warnings(con)[1] == ALL_WEEKS


def test_weeks_before_the_bank_and_consumption_feeds_begin_list_nobody(long_warehouse):  # noqa: F811
    """The platform delivers the orders still open when it goes live, paid before the banks' and the consumption
    feeds begin: in those weeks an institution's prepaid fees look uncovered. Nobody is listed before the first
    week with both feeds, the progress says so, and a movement delivered late for an earlier week opens it
    once both feeds reach back to it."""
    con = long_warehouse
    refresh_institution_week_indicators(con)
    uncovered = [w for (w,) in con.execute(
        f"SELECT DISTINCT week FROM {MART} WHERE coverage_ratio < 0.9 AND week < '2026-W10' ORDER BY week").fetchall()]
    assert uncovered[0] == "2026-W02"  # a hard rule breaks there
    said: list[str] = []
    build_warnings(con, progress=said.append)
    assert first_listed_week(con) == "2026-W10"
    assert said[0].startswith("warnings: 9 weeks before 2026-W10 not listed")
    assert con.execute("SELECT min(week) FROM marts.warnings").fetchone()[0] == "2026-W10"

    insert(con, "account_movements", [loaded_now(movement("0", "Z", at(5, 2), "interest", 1, 1))])
    refresh_institution_week_indicators(con)
    refresh_warnings(con)
    assert first_listed_week(con) == "2026-W10"  # the movement alone: classes were not yet reported
    insert(con, "consumptions", [loaded_now(consumption("s2c", "s2", "S", at(5, 3), 1))])
    refresh_institution_week_indicators(con)
    refresh_warnings(con)
    assert first_listed_week(con) == "2026-W05"
    listed = {w for (w,) in con.execute("SELECT DISTINCT week FROM marts.warnings").fetchall()}
    assert min(listed) == "2026-W05" and set(uncovered) & listed == {w for w in uncovered if w >= "2026-W05"}
