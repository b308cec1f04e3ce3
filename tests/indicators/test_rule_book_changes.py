"""A change of rule book (thresholds.yaml, weights, cut-offs) makes every week stale, so lists are never left
under old rules; the same rule book rebuilds nothing."""

from functools import partial

from test_incremental_indicators import long_warehouse  # noqa: F401 (a fixture)
from test_incremental_warnings import ALL_WEEKS, builds

from indicators import registry
from indicators.compute import refresh_institution_week_indicators
from indicators.rules import RULE_CUTOFFS, TierCutoffs, refresh_warnings


def provinces(con) -> list[str]:
    return [p for (p,) in con.execute("SELECT DISTINCT province_code FROM marts.institution_week_indicators").fetchall()]


def test_edited_thresholds_rebuild_every_week_once(long_warehouse, tmp_path):  # noqa: F811
    con = long_warehouse
    refresh_institution_week_indicators(con)
    refresh_warnings(con)
    first = builds(con)
    overrides = tmp_path / "thresholds.yaml"
    overrides.write_text("provinces:\n" + "".join(f'  "{p}":\n    unresolved_complaints: {{yellow: 7}}\n' for p in provinces(con)),
                         encoding="utf-8")
    edited = partial(registry.thresholds_for, path=overrides)

    assert refresh_warnings(con, thresholds_for=edited)[1] == ALL_WEEKS
    assert all(built > first[week] for week, built in builds(con).items())
    assert refresh_warnings(con, thresholds_for=edited) == (0, [])
    assert refresh_warnings(con)[1] == ALL_WEEKS  # back to the shipped thresholds: stale again


def test_edited_cutoffs_rebuild_every_week(long_warehouse):  # noqa: F811
    con = long_warehouse
    refresh_institution_week_indicators(con)
    refresh_warnings(con)
    assert refresh_warnings(con, rule_cutoffs=RULE_CUTOFFS) == (0, [])
    assert refresh_warnings(con, rule_cutoffs=TierCutoffs(red=0.9, orange=0.8, yellow=0.6))[1] == ALL_WEEKS


def test_builds_recorded_before_the_rule_book_column_rebuild_once(long_warehouse):  # noqa: F811
    con = long_warehouse
    refresh_institution_week_indicators(con)
    refresh_warnings(con)
    con.execute("ALTER TABLE ops.week_builds DROP COLUMN rule_book")  # as written by 2026-11-22's code

    assert refresh_warnings(con)[1] == ALL_WEEKS
    assert refresh_warnings(con) == (0, [])
