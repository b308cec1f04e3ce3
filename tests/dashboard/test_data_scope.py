"""Every data function of the dashboard, called under each role: the scope decides what comes back."""

from __future__ import annotations

import pytest

from dashboard_fixture import A1, A2, A3, B1, C1, SCOPES
from dashboards import data
from dashboards.scope import Scope


@pytest.fixture
def con(warehouse):
    with data.reader(warehouse) as con:
        yield con


def _ids(rows):
    return sorted(r["institution_id"] for r in rows)


@pytest.mark.parametrize(("who", "expected"), [
    ("ministry", [A1, A2, A3, B1, C1]), ("guangdong", [A1, A2, A3, B1]), ("yuexiu", [A1, A2, A3]),
    ("haizhu", [B1]), ("beijing", [C1]), ("dongcheng", [C1]),
])
def test_warnings_page_scoped(con, who, expected):
    rows, total = data.warnings_page(con, SCOPES[who], "2026-W10", 0, 100)
    assert _ids(rows) == sorted(expected)
    assert total == len(expected)


def test_warnings_page_paging_filter_sort(con):
    scope = SCOPES["ministry"]
    rows, total = data.warnings_page(con, scope, "2026-W10", 1, 3, sort_model=[{"colId": "score", "sort": "desc"}])
    assert total == 5 and [r["institution_id"] for r in rows] == [A1, A2]  # C1 .95 is row 0
    red, total = data.warnings_page(con, scope, "2026-W10", 0, 10,
                                    {"tier": {"filterType": "text", "type": "equals", "filter": "red"}})
    assert total == 3 and _ids(red) == sorted([A1, A2, C1])
    high, _ = data.warnings_page(con, scope, None, 0, 10,
                                 {"score": {"filterType": "number", "type": "greaterThan", "filter": 0.6}})
    assert _ids(high) == sorted([A1, A2, C1, A1])  # W09's A1 (0.61) too: no week given


def test_filter_and_sort_refuse_unknown_columns(con):
    with pytest.raises(ValueError):
        data.warnings_page(con, SCOPES["ministry"], None, 0, 10, {"1=1) or (true": {"type": "equals"}})
    with pytest.raises(ValueError):
        data.warnings_page(con, SCOPES["ministry"], None, 0, 10, sort_model=[{"colId": "county_code; drop"}])


def test_filter_value_is_a_parameter_not_sql(con):
    rows, total = data.warnings_page(con, SCOPES["yuexiu"], None, 0, 10, {
        "county_code": {"filterType": "text", "type": "equals", "filter": "x' or '1'='1"}})
    assert rows == [] and total == 0


def test_csv_export_scoped(con):
    text = data.warnings_csv(con, SCOPES["haizhu"], "2026-W10")
    assert text.startswith("\ufeffweek,")
    assert B1 in text and A1 not in text and C1 not in text
    assert len(text.strip().splitlines()) == 2


@pytest.mark.parametrize(("who", "provinces", "red"), [("ministry", ["11", "44"], [1, 2]),
                                                        ("guangdong", ["44"], [2]), ("haizhu", ["44"], [0])])
def test_province_overview(con, who, provinces, red):
    df = data.province_overview(con, SCOPES[who], "2026-W10")
    assert df["province_code"].tolist() == provinces
    assert df["red"].tolist() == red
    if who == "guangdong":  # liability 1 000 000 + 500 000 + 200 000 + 300 000; balance 350+400+200+250 thousand
        assert df["prepaid_liability_fen"].tolist() == [2_000_000]
        assert df["supervised_balance_fen"].tolist() == [1_200_000]


def test_trend_and_weeks_scoped(con):
    trend = data.tier_trend(con, SCOPES["yuexiu"])
    assert trend.to_dict("records") == [{"week": "2026-W09", "tier": "orange", "warnings": 1},
                                        {"week": "2026-W10", "tier": "red", "warnings": 2},
                                        {"week": "2026-W10", "tier": "yellow", "warnings": 1}]
    assert data.weeks(con, SCOPES["beijing"]) == ["2026-W10"]
    assert data.weeks(con, SCOPES["yuexiu"]) == ["2026-W10", "2026-W09"]


def test_warning_rows_only_in_scope(con):
    keys = [("2026-W10", A1), ("2026-W10", C1)]
    assert _ids(data.warning_rows(con, SCOPES["yuexiu"], keys)) == [A1]
    rows = data.warning_rows(con, SCOPES["ministry"], keys)
    assert _ids(rows) == sorted([A1, C1]) and rows[0]["reasons"][0]["indicator"] == "coverage_ratio"


def test_institution_detail_scoped_and_summarised(con):
    assert data.institution_detail(con, SCOPES["beijing"], A1) is None
    assert data.institution_detail(con, SCOPES["haizhu"], A1) is None
    assert data.institution_detail(con, SCOPES["yuexiu"], "unknown") is None
    detail = data.institution_detail(con, SCOPES["yuexiu"], A1)
    assert detail["warnings"]["week"].tolist() == ["2026-W09", "2026-W10"]
    assert detail["scores"]["score"].tolist() == [0.91]
    activity = detail["activity"].set_index("week")
    # W10: two paid orders 300 000 + 200 000 fen (the cancelled one is not counted), one refund 150 000
    assert activity.loc["2026-W10", "orders"] == 2 and activity.loc["2026-W10", "paid_fen"] == 500_000
    assert activity.loc["2026-W10", "requested_fen"] == 150_000
    assert activity.loc["2026-W09", "complaints"] == 1 and activity.loc["2026-W09", "orders"] == 0


def test_data_quality_counts(con):
    dq = data.data_quality(con)
    files = dq["files"].set_index(["feed", "status"])
    assert files.loc[("orders", "loaded"), "files"] == 2 and files.loc[("orders", "loaded"), "rows_quarantined"] == 2
    assert dq["rejected"]["file_name"].tolist() == ["account_movements_20260309_2.csv"]
    assert dq["quarantine"].to_dict("records") == [{"feed": "orders", "rule": "paid_le_list", "rows": 2,
                                                     "released": 0}]


def test_scope_validation():
    with pytest.raises(ValueError):
        Scope("county", "11", "440104")  # county outside its province
    with pytest.raises(ValueError):
        Scope("admin")
    assert SCOPES["yuexiu"].sql("w") == ("w.county_code = ?", ["440104"])
    assert SCOPES["ministry"].sql() == ("true", [])


def test_reader_refuses_while_a_writer_holds_the_file(warehouse):
    import subprocess
    import sys
    import time
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); "
                               "print('ok', flush=True); time.sleep(30)", str(warehouse)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"ok"
        with pytest.raises(data.WarehouseBusy):
            with data.reader(warehouse):
                pass
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    with data.reader(warehouse) as con:
        assert con.execute("select count(*) from marts.warnings").fetchone()[0] == 6


@pytest.mark.parametrize("typed", ["%", "_", "\\", "A_", "%A"])
def test_like_wildcards_in_a_filter_are_literal_characters(con, typed):
    """An official searching for `_` wants names with an underscore, not every row."""
    rows, total = data.warnings_page(con, SCOPES["ministry"], "2026-W10", 0, 10, {
        "institution_id": {"filterType": "text", "type": "contains", "filter": typed}})
    assert (rows, total) == ([], 0)


def test_contains_still_matches_a_part_of_the_value(con):
    rows, total = data.warnings_page(con, SCOPES["ministry"], "2026-W10", 0, 10, {
        "institution_id": {"filterType": "text", "type": "contains", "filter": A1[3:9]}})
    assert A1 in _ids(rows)
    excluded, _ = data.warnings_page(con, SCOPES["ministry"], "2026-W10", 0, 10, {
        "institution_id": {"filterType": "text", "type": "notContains", "filter": "_"}})
    assert len(excluded) == 5
