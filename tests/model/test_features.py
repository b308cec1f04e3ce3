"""Feature values by hand on a tiny mart: changes over calendar weeks (gaps stay gaps), trailing extremes, ranks
within the province-week, shares of the liability, and the history a range of weeks reads."""

from datetime import date, timedelta

import pandas as pd
import pytest
from model_fixtures import FIRST_MONDAY, filing, mart_row, write_warehouse

from models.features import load_features
from pipelines.warehouse import connect

A, B, C = "91440000MA0000001X", "91440000MA0000002X", "91110000MA0000003X"
INDICATORS = ("prepaid_liability_fen", "reserve_shortfall_fen", "coverage_ratio")


@pytest.fixture
def tiny(tmp_path):
    """A: coverage 1.0, 0.9, …, 0.1 over weeks 0–9 but no row in week 5; B (same province) coverage 0.5 every
    week; C in another province. A's liability 1,000,000 fen and shortfall 100,000 fen × week."""
    rows = []
    for w in range(10):
        monday = FIRST_MONDAY + timedelta(weeks=w)
        if w != 5:
            rows.append(mart_row(A, monday, "44", {"prepaid_liability_fen": 1_000_000.0,
                                                  "reserve_shortfall_fen": 100_000.0 * w,
                                                  "coverage_ratio": round(1.0 - 0.1 * w, 10)}))
        rows.append(mart_row(B, monday, "44", {"prepaid_liability_fen": 0.0, "reserve_shortfall_fen": 0.0,
                                              "coverage_ratio": 0.5}))
        rows.append(mart_row(C, monday, "11", {"prepaid_liability_fen": 5.0, "reserve_shortfall_fen": 1.0,
                                              "coverage_ratio": 9.0}))
    filings = pd.DataFrame([filing(i, date(2025, 12, 1), "registered", "44", None, date(2025, 12, 1))
                            for i in (A, B, C)])
    return write_warehouse(tmp_path / "tiny.duckdb", pd.DataFrame(rows), filings, INDICATORS)


def _row(frame, inst, week_index):
    week = (FIRST_MONDAY + timedelta(weeks=week_index)).isocalendar()
    return frame[(frame["institution_id"] == inst) & (frame["week"] == f"{week.year}-W{week.week:02d}")].iloc[0]


def test_features_by_hand(tiny):
    frame, indicators, features = load_features(connect(tiny))
    assert sorted(indicators) == sorted(INDICATORS)
    a9, a6, a4 = _row(frame, A, 9), _row(frame, A, 6), _row(frame, A, 4)
    assert a9["coverage_ratio__chg1"] == pytest.approx(0.1 - 0.2)
    assert pd.isna(a9["coverage_ratio__chg4"])  # week 5 has no row
    assert _row(frame, A, 8)["coverage_ratio__chg4"] == pytest.approx(0.2 - 0.6)
    assert a9["coverage_ratio__chg8"] == pytest.approx(0.1 - 0.9)
    assert pd.isna(a6["coverage_ratio__chg1"])  # week 5 has no row: a gap, not the previous row
    assert pd.isna(a4["coverage_ratio__chg8"])  # no week −4
    assert a9["coverage_ratio__max8"] == pytest.approx(0.8)  # weeks 2–9 (week 5 missing)
    assert a9["coverage_ratio__min8"] == pytest.approx(0.1)
    # ranks within province 44 and the week: A 0.1 below B 0.5 → 1/2 and 2/2; C alone in 11 → 1
    assert a9["coverage_ratio__rank"] == pytest.approx(0.5)
    assert _row(frame, B, 9)["coverage_ratio__rank"] == pytest.approx(1.0)
    assert _row(frame, C, 9)["coverage_ratio__rank"] == pytest.approx(1.0)
    assert a9["reserve_shortfall_fen__per_liability"] == pytest.approx(0.9)
    assert pd.isna(_row(frame, B, 9)["reserve_shortfall_fen__per_liability"])  # no liability: no share
    assert "prepaid_liability_fen__per_liability" not in features


def test_a_range_of_weeks_reads_its_history(tiny):
    """Weeks 9 alone, loaded with 8 weeks of history, get the same features as from the whole mart."""
    con = connect(tiny)
    whole, _, features = load_features(con)
    monday = FIRST_MONDAY + timedelta(weeks=9)
    part, _, _ = load_features(con, monday, monday)
    assert set(part["week_start"]) == {pd.Timestamp(monday)}
    expected = whole[whole["week_start"] == pd.Timestamp(monday)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part[features], expected[features])
    assert part["coverage_ratio__chg8"].notna().sum() == 3


def test_features_of_some_provinces_equal_those_of_the_whole_mart(tiny):
    """Province 44 alone (A and B), weeks 8–9: the same features as from every province, C not read."""
    con = connect(tiny)
    whole, _, features = load_features(con)
    first, last = FIRST_MONDAY + timedelta(weeks=8), FIRST_MONDAY + timedelta(weeks=9)
    part, _, _ = load_features(con, first, last, provinces=["44"])
    assert set(part["institution_id"]) == {A, B}
    expected = whole[(whole["week_start"] >= pd.Timestamp(first)) & (whole["province_code"] == "44")]
    pd.testing.assert_frame_equal(part[features].reset_index(drop=True), expected[features].reset_index(drop=True))
