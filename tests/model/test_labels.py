"""Labels from hand-made filings: positive 2–8 weeks before an abnormal closure, the rest by hand."""

from datetime import date, timedelta

import pandas as pd

from models.labels import abnormal_closures, label_table
from pipelines.warehouse import connect
from model_fixtures import FIRST_MONDAY, filing, iso_week, mart_row, write_warehouse

ABNORMAL, NORMAL, HEALTHY = "91110000MA0000001X", "91110000MA0000002X", "91110000MA0000003X"


def build(tmp_path):
    """12 weeks (W02 … W13). ABNORMAL closes abnormally on Wednesday of week index 10 (2026-W12);
    NORMAL closes normally on Wednesday of week index 6; HEALTHY never closes."""
    mondays = [FIRST_MONDAY + timedelta(weeks=w) for w in range(12)]
    rows = []
    for inst, last in ((ABNORMAL, 10), (NORMAL, 6), (HEALTHY, 11)):
        rows += [mart_row(inst, m, "44", {"coverage_ratio": 1.0, "unresolved_complaints": 0.0,
                                          "sales_spike_ratio": 1.0, "discount_depth": 0.1})
                 for m in mondays[: last + 1]]
    filings = [filing(i, date(2025, 12, 1), "registered", "44", None, date(2025, 12, 1))
               for i in (ABNORMAL, NORMAL, HEALTHY)]
    filings += [filing(ABNORMAL, mondays[10] + timedelta(days=2), "closed", "44", "abnormal", date(2026, 3, 30)),
                filing(NORMAL, mondays[6] + timedelta(days=2), "closed", "44", "normal", date(2026, 3, 30))]
    return write_warehouse(tmp_path / "w.duckdb", pd.DataFrame(rows), pd.DataFrame(filings)), mondays


def test_labels_follow_the_filings(tmp_path):
    path, mondays = build(tmp_path)
    con = connect(path)
    got = label_table(con, as_of=date(2026, 3, 30)).to_pandas()
    by_key = {(r.institution_id, r.week): (r.label, r.observed) for r in got.itertuples()}
    week = [iso_week(m) for m in mondays]

    # ABNORMAL: closure in week index 10 → weeks 2..8 ahead (indices 2..8) positive, index 1 ahead of
    # closure is 9 weeks ahead (negative), index 9 (last week before) and 10 (closure week) dropped.
    assert [by_key[(ABNORMAL, week[i])][0] for i in range(9)] == [0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert (ABNORMAL, week[9]) not in by_key and (ABNORMAL, week[10]) not in by_key
    # NORMAL: never positive; the week before its closure stays (label 0), the closure week is dropped.
    assert [by_key[(NORMAL, week[i])][0] for i in range(6)] == [0] * 6
    assert (NORMAL, week[6]) not in by_key
    # HEALTHY: all 12 weeks, negative.
    assert [by_key[(HEALTHY, w)][0] for w in week] == [0] * 12


def test_unfinished_horizon_is_not_observed(tmp_path):
    path, mondays = build(tmp_path)
    got = label_table(connect(path), as_of=date(2026, 3, 30)).to_pandas()
    healthy = got[got["institution_id"] == HEALTHY].set_index("week")["observed"]
    # week_end + 56 days ≤ 2026-03-30 holds for week ends up to 2026-02-02, i.e. W02 … W05 (index 0..3).
    assert healthy.tolist() == [True] * 4 + [False] * 8
    # The whole week is unobserved, positives included: keeping only them would inflate the base rate.
    abnormal = got[got["institution_id"] == ABNORMAL].set_index("week")["observed"]
    assert abnormal.tolist() == [True] * 4 + [False] * 5


def test_abnormal_closures_only_lists_abnormal_ones(tmp_path):
    path, mondays = build(tmp_path)
    got = abnormal_closures(connect(path))
    assert got["institution_id"].tolist() == [ABNORMAL]
    assert pd.Timestamp(got["closure_date"].iloc[0]).date() == mondays[10] + timedelta(days=2)
