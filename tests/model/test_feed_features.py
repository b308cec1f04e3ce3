"""Feed counts by hand on a tiny warehouse: sales and class hours against the institution's own earlier weeks,
complaints, refund requests and ratings over 4 and 8 weeks, their ranks in the province-week, and the staff of
the filings against earlier filings; events after a week never reach its features, events before it do."""

from datetime import timedelta

import math

import pandas as pd
import pytest
from model_fixtures import FIRST_MONDAY, filing, iso_week

from indicators.compute import compute_institution_week_indicators
from models.features import FEED_COUNTS, FEED_FEATURES, STAFF_CHANGES, load_features
from pipelines.warehouse import connect, create_staging_tables

A, B = "91440000MA0000001X", "91440000MA0000002X"
FEEDS = [*FEED_FEATURES, *(f"{f}_rank" for f in FEED_COUNTS)]
# (institution, days after the first Monday, event, staff count): A registered 100 days before the mart with 10
# staff and cut them to 6 on Wednesday of week 5; B grew from 8 to 9 in week 2
STAFF = ((A, -100, "registered", 10), (A, 37, "updated", 6), (B, -100, "registered", 8), (B, 16, "updated", 9))
WEEKS = 12


def _at(week: int, day: int = 2) -> str:
    """Wednesday (by default) 10:00 in Beijing of week `week`."""
    return f"{FIRST_MONDAY + timedelta(weeks=week, days=day)} 10:00:00+08"


def _events(complaint_weeks=(3, 6, 6), rating_weeks=((5, 1), (6, 5))) -> dict[str, list[tuple]]:
    """A pays 1,000 fen a week in weeks 0–7 and 100 fen in weeks 8–11 (plus a cancelled order), consumes 2 class
    hours a week, complains in `complaint_weeks`, requests a refund in week 9 and rates (week, stars); B is silent."""
    return {
        "orders": [(f"o{w}", A, 1000 if w < 8 else 100, _at(w), "paid") for w in range(WEEKS)]
        + [("ox", A, 50_000, _at(10), "cancelled")],
        "consumptions": [(f"c{w}", f"o{w}", A, _at(w), 2) for w in range(WEEKS)],
        "complaints": [(f"k{n}", A, _at(w)) for n, w in enumerate(complaint_weeks)],
        "refunds": [("r0", "o1", A, _at(9), 500)],
        "evaluations": [(f"e{n}", f"o{w}", A, _at(w), stars) for n, (w, stars) in enumerate(rating_weeks)],
    }


COLUMNS = {
    "orders": "order_id, institution_id, paid_fen, paid_at, status",
    "consumptions": "consumption_id, order_id, institution_id, consumed_at, class_hours",
    "complaints": "complaint_id, institution_id, received_at",
    "refunds": "refund_id, order_id, institution_id, requested_at, requested_fen",
    "evaluations": "evaluation_id, order_id, institution_id, rated_at, stars",
}


def _warehouse(path, events, staff=STAFF, b_province="44"):
    """Filings and feed events in staging, and the mart and weekly sums the indicators compute from them."""
    con = connect(path)
    create_staging_tables(con)
    filings = pd.DataFrame([
        {**filing(i, FIRST_MONDAY + timedelta(days=day), event, "44" if i == A else b_province, None, FIRST_MONDAY),
         "staff_count": count}
        for i, day, event, count in staff])
    con.register("filings_df", filings)
    con.execute(f"insert into staging.institutions ({', '.join(filings.columns)}) "
                f"select {', '.join(filings.columns)} from filings_df")
    for table, values in events.items():
        marks = ", ".join("?" * len(COLUMNS[table].split(",")))
        con.executemany(f"insert into staging.{table} ({COLUMNS[table]}) values ({marks})", values)
    compute_institution_week_indicators(con)
    con.close()
    return path


def _row(frame, inst, week):
    return frame[(frame["institution_id"] == inst) & (frame["week"] == iso_week(FIRST_MONDAY + timedelta(weeks=week)))].iloc[0]


def test_feed_features_by_hand(tmp_path):
    frame, _, features = load_features(connect(_warehouse(tmp_path / "w.duckdb", _events())))
    assert set(FEED_FEATURES) <= set(features)
    a7, a11, b7 = _row(frame, A, 7), _row(frame, A, 11), _row(frame, B, 7)
    assert a7["complaint_surge__complaints_4w"] == 2  # weeks 4–7
    assert a7["complaint_surge__complaints_8w"] == 3  # weeks 0–7
    assert a7["complaint_surge__complaints_8w_per_order"] == pytest.approx(3 / 8)  # 8 paid orders so far
    assert a7["rating_drop__mean_stars_8w"] == pytest.approx(3.0)
    assert a7["rating_drop__low_share_8w"] == pytest.approx(0.5)
    assert a7["refund_request_surge__refunds_8w"] == 0
    assert a11["refund_request_surge__refunds_8w_per_order"] == pytest.approx(1 / 12)  # the cancelled order is no sale
    # weeks 8–11 against weeks 0–7 (the own weeks t−15 … t−4 that exist), 3 base weeks per 4-week block
    assert a11["sales_spike_ratio__sales_4w_vs_own"] == pytest.approx(math.log(401) - math.log(1 + 8000 / 3), rel=1e-5)
    assert a11["consumption_drop__hours_4w_vs_own"] == pytest.approx(math.log(9) - math.log(1 + 16 / 3), rel=1e-5)
    assert b7["complaint_surge__complaints_8w"] == 0 and pd.isna(b7["rating_drop__mean_stars_8w"])
    assert a7["complaint_surge__complaints_8w_rank"] == 1.0 and b7["complaint_surge__complaints_8w_rank"] == 0.5


def test_feed_features_read_only_the_past(tmp_path):
    base = load_features(connect(_warehouse(tmp_path / "base.duckdb", _events())))[0]
    later = _events(complaint_weeks=(3, 6, 6, 8, 9), rating_weeks=((5, 1), (6, 5), (8, 1)))
    future = load_features(connect(_warehouse(tmp_path / "future.duckdb", later)))[0]
    pd.testing.assert_series_equal(_row(base, A, 7)[FEEDS], _row(future, A, 7)[FEEDS])
    assert _row(future, A, 9)["complaint_surge__complaints_4w"] == 4  # the test can fail: later weeks see them
    earlier = load_features(connect(_warehouse(tmp_path / "past.duckdb", _events(complaint_weeks=(3, 5, 6, 6)))))[0]
    assert _row(earlier, A, 7)["complaint_surge__complaints_8w"] == 4


def test_events_fall_in_the_beijing_week(tmp_path):
    """Monday 00:30 in Beijing is Sunday 16:30 UTC: it opens the new week, and Sunday 23:30 still closes the old."""
    monday = FIRST_MONDAY + timedelta(weeks=4)
    events = {**_events(), "complaints": [("k0", A, f"{monday - timedelta(days=1)} 23:30:00+08"),
                                          ("k1", A, f"{monday} 00:30:00+08")]}
    frame = load_features(connect(_warehouse(tmp_path / "w.duckdb", events)))[0]
    assert _row(frame, A, 3)["complaint_surge__complaints_4w"] == 1
    assert _row(frame, A, 4)["complaint_surge__complaints_4w"] == 2


def test_feed_features_of_one_province_equal_those_of_all(tmp_path):
    """B moved to province 11: features of province 44 alone read A's feeds only, and give what all provinces give."""
    con = connect(_warehouse(tmp_path / "w.duckdb", _events(), b_province="11"))
    whole = load_features(con)[0]
    first, last = FIRST_MONDAY + timedelta(weeks=9), FIRST_MONDAY + timedelta(weeks=11)
    part = load_features(con, first, last, provinces=["44"])[0]
    assert set(part["institution_id"]) == {A}
    expected = whole[(whole["week_start"] >= pd.Timestamp(first)) & (whole["institution_id"] == A)]
    pd.testing.assert_frame_equal(part[FEEDS].reset_index(drop=True), expected[FEEDS].reset_index(drop=True))


def test_a_range_of_weeks_reads_its_feed_history(tmp_path):
    """Week 11 alone gets the feed features it gets from the whole history (its 26-week windows reach back)."""
    con = connect(_warehouse(tmp_path / "w.duckdb", _events()))
    whole = load_features(con)[0]
    monday = FIRST_MONDAY + timedelta(weeks=11)
    part = load_features(con, monday, monday)[0]
    expected = whole[whole["week_start"] == pd.Timestamp(monday)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part[FEEDS], expected[FEEDS])


def test_feed_features_read_the_weekly_sums_the_indicators_stored(tmp_path):
    """The feeds' events are counted once, into marts.institution_week_sums: the features follow those sums
    (tampered with here), not another count of the feeds."""
    con = connect(_warehouse(tmp_path / "w.duckdb", _events()))
    before = _row(load_features(con)[0], A, 7)["complaint_surge__complaints_4w"]
    con.execute("update marts.institution_week_sums set complaints = complaints + 1 where institution_id = ? "
                "and week_start = ?", [A, FIRST_MONDAY + timedelta(weeks=7)])
    assert _row(load_features(con)[0], A, 7)["complaint_surge__complaints_4w"] == before + 1
    con.execute("alter table marts.institution_week_sums drop column low_ratings")  # sums from before the column
    assert load_features(con)[0][list(FEED_FEATURES)].isna().all().all()  # missing until recomputed, not an error


def test_staff_changes_by_hand(tmp_path):
    frame, _, features = load_features(connect(_warehouse(tmp_path / "w.duckdb", _events())))
    assert set(STAFF_CHANGES) <= set(features) and not any(f"{f}_rank" in features for f in STAFF_CHANGES)
    a4, a7, b7 = _row(frame, A, 4), _row(frame, A, 7), _row(frame, B, 7)
    assert a4["staff_unverified_share__staff_vs_13w"] == 1.0  # 10 in force, 10 at the end of week -9
    assert a4["staff_unverified_share__staff_vs_max_26w"] == 1.0  # day -100 is within 26 weeks of week 4's end
    assert pd.isna(a4["staff_unverified_share__largest_staff_cut_26w"])  # a registration follows no filing
    assert a7["staff_unverified_share__staff_vs_13w"] == pytest.approx(0.6)  # 6 against 10
    assert a7["staff_unverified_share__staff_vs_max_26w"] == pytest.approx(0.6)  # 6 against the 10 of day -100
    assert a7["staff_unverified_share__largest_staff_cut_26w"] == pytest.approx(0.6)
    assert b7["staff_unverified_share__staff_vs_max_26w"] == pytest.approx(1.0)  # 9 against 9 (both in 26 weeks)
    assert b7["staff_unverified_share__largest_staff_cut_26w"] == pytest.approx(9 / 8)  # a rise is no cut


def test_a_later_staff_cut_stays_out_of_earlier_weeks(tmp_path):
    base = load_features(connect(_warehouse(tmp_path / "base.duckdb", _events())))[0]
    cut = (*STAFF, (A, 65, "updated", 3))  # Wednesday of week 9
    future = load_features(connect(_warehouse(tmp_path / "future.duckdb", _events(), cut)))[0]
    pd.testing.assert_series_equal(_row(base, A, 8)[FEEDS], _row(future, A, 8)[FEEDS])
    assert _row(future, A, 9)["staff_unverified_share__largest_staff_cut_26w"] == pytest.approx(0.5)
    assert _row(future, A, 9)["staff_unverified_share__staff_vs_13w"] == pytest.approx(0.3)
