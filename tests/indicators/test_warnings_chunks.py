"""The warnings are evaluated a few weeks at a time and formatted a part of the listed rows at a time (memory); the
list must not depend on either."""

import pandas as pd
from test_incremental_indicators import long_warehouse  # noqa: F401 (a fixture)
from test_incremental_warnings import warnings_table

from indicators import rules
from indicators.compute import refresh_institution_week_indicators


def test_the_list_does_not_depend_on_how_many_weeks_are_evaluated_together(long_warehouse, monkeypatch):  # noqa: F811
    con = long_warehouse
    refresh_institution_week_indicators(con)
    monkeypatch.setattr(rules, "WEEKS_PER_EVALUATION", 100)
    whole = rules.build_warnings(con)
    at_once = warnings_table(con)
    monkeypatch.setattr(rules, "WEEKS_PER_EVALUATION", 3)
    said: list[str] = []
    assert rules.build_warnings(con, progress=said.append) == whole > 0
    pd.testing.assert_frame_equal(warnings_table(con), at_once)
    assert at_once["week"].nunique() > 3
    weeks = con.execute("select count(distinct week) from marts.institution_week_indicators where week >= ?",
                        [rules.first_listed_week(con)]).fetchone()[0]
    assert said[0].startswith("warnings: 9 weeks before 2026-W10 not listed")
    assert len(said) == 1 + -(-weeks // 3)  # then a line per block of weeks, the last with every week and row
    assert said[-1].endswith(f"({weeks} of {weeks} weeks, {whole:,} rows listed)")
    monkeypatch.setattr(rules, "LISTED_PER_PART", 7)  # parts cut through province-weeks: ranks run on across them
    assert rules.build_warnings(con) == whole
    pd.testing.assert_frame_equal(warnings_table(con), at_once)
    assert warnings_table(con).groupby(["week", "province_code"]).size().max() > 7
