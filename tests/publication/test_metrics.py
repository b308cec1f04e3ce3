"""Capacity-limited metrics on tiny hand-made frames (expected values counted by hand)."""

import math

import pandas as pd
import polars as pl
import pytest

from models.metrics import event_recall, inspection_capacity, lead_times, median_lead, precision_at_k, top_k


def test_capacity_is_one_percent_with_a_floor_of_five_and_a_ceiling_of_all():
    assert inspection_capacity(3) == 3
    assert inspection_capacity(100) == 5
    assert inspection_capacity(501) == 6  # ceil(5.01)
    assert inspection_capacity(2000) == 20


def _scores(rows):
    return pd.DataFrame(rows, columns=["province_code", "week", "institution_id", "score", "label"])


def test_precision_at_k_per_province_week():
    rows = [("44", "2026-W10", f"I{i}", s, lab) for i, (s, lab) in
            enumerate([(0.9, 1), (0.8, 0), (0.7, 1), (0.6, 0), (0.5, 0), (0.4, 1), (0.1, 0)])]
    rows += [("11", "2026-W10", "J1", 0.2, 0), ("11", "2026-W10", "J2", 0.3, 1)]
    out = precision_at_k(_scores(rows), "label", k_fn=lambda n: min(n, 5)).set_index("province_code")
    # Guangdong: top 5 are I0..I4, positives I0 and I2 -> 2/5; Beijing: both, one positive -> 1/2.
    assert out.loc["44", ["k", "hits", "positives"]].tolist() == [5, 2, 3]
    assert out.loc["44", "precision"] == pytest.approx(0.4)
    assert out.loc["11", "precision"] == pytest.approx(0.5)


def test_precision_accepts_polars_and_label_arrays():
    frame = pl.DataFrame({"province_code": ["44"] * 3, "week": ["2026-W10"] * 3,
                          "institution_id": ["A", "B", "C"], "score": [0.1, 0.9, 0.5]})
    out = precision_at_k(frame, [1, 0, 0], k_fn=lambda n: 1)
    assert out["precision"].tolist() == [0.0]  # B is ranked first but A closed


def test_top_k_breaks_ties_by_institution_id():
    frame = _scores([("44", "2026-W10", "B", 0.5, 0), ("44", "2026-W10", "A", 0.5, 0),
                     ("44", "2026-W10", "C", 0.9, 0)])
    ranked = top_k(frame, k_fn=lambda n: 2).set_index("institution_id")
    assert ranked["rank"].to_dict() == {"B": 3, "A": 2, "C": 1}
    assert ranked["in_top_k"].to_dict() == {"B": False, "A": True, "C": True}


def _history():
    """X closes on 2026-03-25 (week 13); it is top-1 in weeks 3, 8 and 12. Y closes in week 13 too, only
    ever top-1 in week 12 (one week before). Z closes in week 13 and is never first."""
    rows = []
    for w in range(1, 13):
        week = f"2026-W{w:02d}"
        rows += [("44", week, "X", 0.9 if w in (3, 8) else 0.1, 0),
                 ("44", week, "Y", 0.95 if w == 12 else 0.2, 0),
                 ("44", week, "Z", 0.05, 0),
                 ("44", week, "W", 0.5 if w not in (3, 8, 12) else 0.0, 0)]
    return _scores(rows)


CLOSURES = pd.DataFrame({"institution_id": ["X", "Y", "Z"],
                         "closure_date": ["2026-03-25", "2026-03-28", "2026-03-23"]})


def test_lead_times_take_the_first_selection_inside_the_window():
    leads = lead_times(_history(), CLOSURES, k_fn=lambda n: 1).set_index("institution_id")
    # X: first selected week 3, ten weeks before week 13 (within 16); Y: week 12 = lead 1; Z: never.
    assert leads.loc["X", "first_selected_week"] == "2026-W03"
    assert leads.loc["X", "lead_weeks"] == 10
    assert leads.loc["Y", "lead_weeks"] == 1
    assert math.isnan(leads.loc["Z", "lead_weeks"])
    assert median_lead(leads.reset_index()) == pytest.approx(5.5)


def test_event_recall_counts_only_the_window():
    history = _history()
    # window 2..8: X (week 8 = lead 5) counts, Y (lead 1) does not, Z never -> 1/3.
    assert event_recall(history, CLOSURES, k_fn=lambda n: 1) == pytest.approx(1 / 3)
    assert event_recall(history, CLOSURES, k_fn=lambda n: 1, window=(1, 8)) == pytest.approx(2 / 3)
    assert event_recall(history, CLOSURES, k_fn=lambda n: 1, window=(11, 16)) == 0.0


def test_event_recall_of_an_existing_selection():
    history = _history().assign(flagged=lambda f: f["institution_id"].eq("Z") & f["week"].eq("2026-W09"))
    assert event_recall(history, CLOSURES, selected_col="flagged") == pytest.approx(1 / 3)
