"""Early-warning metrics measured the way inspectors work: a fixed capacity of visits per province-week.

A score is only useful if the institutions it ranks highest are the ones that go on to close abnormally,
early enough to act. So every metric here ranks within a group (province and week), keeps the top k
(k = inspection capacity), and compares that selection with what happened.

Inputs are pandas or polars frames; outputs are pandas frames or plain numbers. Weeks are ISO week
strings ('2026-W10'); closures carry a `closure_date`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date

import numpy as np
import pandas as pd

DEFAULT_GROUP_COLS = ("province_code", "week")
RECALL_WINDOW = (2, 8)  # weeks before closure in which a selection counts as a timely warning
LEAD_WINDOW = (1, 16)  # weeks before closure searched for the first selection


def inspection_capacity(n_active: int, share: float = 0.01, minimum: int = 5) -> int:
    """Visits a province can make in a week: 1% of its active institutions, at least 5, at most all."""
    return min(n_active, max(minimum, math.ceil(share * n_active)))


def _pandas(frame) -> pd.DataFrame:
    return frame.to_pandas() if hasattr(frame, "to_pandas") else frame


def week_monday(week: str) -> date:
    """Monday of an ISO week string such as '2026-W10'."""
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def mondays(dates: pd.Series) -> pd.Series:
    """The Monday that starts each date's ISO week."""
    day = pd.to_datetime(dates).dt.normalize()
    return day - pd.to_timedelta(day.dt.day_of_week, unit="D")


def weeks_before(weeks: pd.Series, dates: pd.Series) -> pd.Series:
    """Whole ISO weeks from each week in `weeks` to the week holding the matching date in `dates`."""
    start = pd.to_datetime(weeks.map(week_monday))
    return (mondays(dates) - start).dt.days // 7


def top_k(
    scores,
    group_cols: Sequence[str] = DEFAULT_GROUP_COLS,
    k_fn: Callable[[int], int] = inspection_capacity,
    score_col: str = "score",
) -> pd.DataFrame:
    """The scores frame with `rank` (1 = highest score; ties broken by institution_id) and `in_top_k`."""
    frame = _pandas(scores).reset_index(drop=True)
    order = frame.sort_values([*group_cols, score_col, "institution_id"],
                              ascending=[True] * len(group_cols) + [False, True])
    frame["rank"] = order.groupby(list(group_cols)).cumcount().add(1)
    group_size = frame.groupby(list(group_cols))[score_col].transform("size")
    capacity = group_size.map(lambda n: k_fn(int(n)))
    frame["in_top_k"] = frame["rank"] <= capacity
    return frame


def precision_at_k(
    scores,
    labels: str | Sequence,
    group_cols: Sequence[str] = DEFAULT_GROUP_COLS,
    k_fn: Callable[[int], int] = inspection_capacity,
    score_col: str = "score",
) -> pd.DataFrame:
    """Per group: n active, k, positives in the top k and precision = hits / k.

    `labels` is a column of `scores` or an array aligned with its rows (1 = closed abnormally within the
    horizon).
    """
    frame = _pandas(scores).copy()
    frame["_label"] = frame[labels] if isinstance(labels, str) else np.asarray(labels)
    ranked = top_k(frame, group_cols, k_fn, score_col)
    ranked["_hit"] = ranked["in_top_k"] & (ranked["_label"].astype(int) == 1)
    out = ranked.groupby(list(group_cols)).agg(
        n=("in_top_k", "size"), k=("in_top_k", "sum"), hits=("_hit", "sum"), positives=("_label", "sum"),
    ).reset_index()
    out["precision"] = out["hits"] / out["k"]
    return out


def _selections(scores, group_cols, k_fn, score_col, selected_col) -> pd.DataFrame:
    """Rows (institution_id, week) that were selected: given by `selected_col`, else the top k."""
    frame = _pandas(scores)
    if selected_col is None:
        frame = top_k(frame, group_cols, k_fn, score_col)
        selected_col = "in_top_k"
    return frame.loc[frame[selected_col].astype(bool), ["institution_id", "week"]]


def lead_times(
    scores,
    closures,
    group_cols: Sequence[str] = DEFAULT_GROUP_COLS,
    k_fn: Callable[[int], int] = inspection_capacity,
    score_col: str = "score",
    window: tuple[int, int] = LEAD_WINDOW,
    selected_col: str | None = None,
) -> pd.DataFrame:
    """Per closure: the first selected week within `window` weeks before closure and the lead in weeks.

    `closures` has `institution_id, closure_date` (one row per abnormal closure). `lead_weeks` is NaN
    when the institution was never selected in the window. Pass `selected_col` to measure an existing
    selection (e.g. warning-list membership) instead of the top k.
    """
    events = _pandas(closures)[["institution_id", "closure_date"]].drop_duplicates("institution_id")
    chosen = _selections(scores, group_cols, k_fn, score_col, selected_col).merge(events, on="institution_id")
    chosen["lead"] = weeks_before(chosen["week"], chosen["closure_date"])
    low, high = window
    in_window = chosen[chosen["lead"].between(low, high)]
    first = in_window.sort_values("lead", ascending=False).drop_duplicates("institution_id")
    out = events.merge(first[["institution_id", "week", "lead"]], on="institution_id", how="left")
    return out.rename(columns={"week": "first_selected_week", "lead": "lead_weeks"})


def event_recall(
    scores,
    closures,
    group_cols: Sequence[str] = DEFAULT_GROUP_COLS,
    k_fn: Callable[[int], int] = inspection_capacity,
    score_col: str = "score",
    window: tuple[int, int] = RECALL_WINDOW,
    selected_col: str | None = None,
) -> float:
    """Share of closures selected at least once between window[0] and window[1] weeks before closing."""
    leads = lead_times(scores, closures, group_cols, k_fn, score_col, window, selected_col)
    return float(leads["lead_weeks"].notna().mean()) if len(leads) else float("nan")


def median_lead(leads: pd.DataFrame) -> float:
    """Median lead in weeks over the closures that were selected at all (NaN when none was)."""
    return float(leads["lead_weeks"].dropna().median()) if leads["lead_weeks"].notna().any() else float("nan")
