"""Model features: the indicator levels of the mart plus their change over the last 4 weeks.

Every feature of a week uses that week's row and rows of earlier weeks only, so a score never sees the
future (the mart itself is computed as of the week's end).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

MART = "marts.institution_week_indicators"
KEY_COLUMNS = ("institution_id", "week", "week_start", "week_end", "province_code", "county_code", "name",
               "category", "mode")
CHANGE_WEEKS = 4
CHANGE_SUFFIX = "__chg4"


def indicator_columns(con: duckdb.DuckDBPyConnection, table: str = MART) -> list[str]:
    """The mart's indicator columns: the registry's names when it is importable, else every DOUBLE after `mode`."""
    described = con.execute(f"DESCRIBE {table}").fetchall()
    doubles = [name for name, kind, *_ in described if name not in KEY_COLUMNS and kind == "DOUBLE"]
    try:
        from indicators.registry import NAMES
    except ImportError:
        return doubles
    return [n for n in NAMES if n in doubles] or doubles


def load_mart(con: duckdb.DuckDBPyConnection, table: str = MART) -> tuple[pd.DataFrame, list[str]]:
    """The mart as a frame sorted by week and institution, with its indicator column names."""
    indicators = indicator_columns(con, table)
    cols = ", ".join(f'"{c}"' for c in (*KEY_COLUMNS, *indicators))
    frame = con.execute(f"SELECT {cols} FROM {table} ORDER BY week, institution_id").df()
    frame["week_start"] = pd.to_datetime(frame["week_start"])
    frame["week_end"] = pd.to_datetime(frame["week_end"])
    frame[indicators] = frame[indicators].astype("float64")
    return frame, indicators


def feature_names(indicators: list[str]) -> list[str]:
    return [*indicators, *(f"{i}{CHANGE_SUFFIX}" for i in indicators)]


def base_indicator(feature: str) -> str:
    """The indicator a feature is derived from (a 4-week change belongs to its level's indicator)."""
    return feature.removesuffix(CHANGE_SUFFIX)


def add_features(frame: pd.DataFrame, indicators: list[str]) -> pd.DataFrame:
    """Add `<indicator>__chg4` = this week's value minus the value 4 weeks earlier (NaN without that row)."""
    past = frame[["institution_id", "week_start", *indicators]].copy()
    past["week_start"] = past["week_start"] + pd.Timedelta(weeks=CHANGE_WEEKS)
    past = past.rename(columns={i: f"{i}__past" for i in indicators})
    merged = frame.merge(past, on=["institution_id", "week_start"], how="left")
    changes = {f"{i}{CHANGE_SUFFIX}": merged[i] - merged[f"{i}__past"] for i in indicators}
    out = pd.concat([frame.reset_index(drop=True), pd.DataFrame(changes)], axis=1)
    return out


def matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The feature matrix with infinities as missing (HGB and the imputer treat NaN as missing)."""
    values = frame[features].to_numpy(dtype="float64", copy=True)
    values[~np.isfinite(values)] = np.nan
    return values
