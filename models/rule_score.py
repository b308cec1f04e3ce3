"""The transparent rule score of `indicators.rules` for every institution-week (fallback and baseline).

`indicators.rules` lists candidates for the warning list; the model needs every row, scored by
`rules.rule_points`, with the flags as contributions (`load`; `scores` without them, for the backtest).
Returns None while the rules module is missing or cannot read the mart, so the model never depends on it
to run.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from models.features import MART, week_chunks

KEY = ["institution_id", "week"]


def _reasons(flags: pd.DataFrame) -> pd.Series:
    """JSON `[{indicator, value, contribution = points}]` per institution-week, most points first."""
    ordered = flags.sort_values(["points", "indicator"], ascending=[False, True])
    items = ordered.assign(item=[{"indicator": i, "value": float(v), "contribution": float(p)}
                                 for i, v, p in zip(ordered["indicator"], ordered["value"], ordered["points"])])
    return items.groupby(KEY)["item"].agg(lambda s: json.dumps(list(s), ensure_ascii=False)).rename("contributions")


def _points(con: duckdb.DuckDBPyConnection, weeks: list[str] | None) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    try:
        from indicators import rules
    except ImportError:
        return None
    try:
        return rules.rule_points(con, weeks)
    except ValueError:  # the mart lacks an indicator the rule book needs
        return None


def load(con: duckdb.DuckDBPyConnection, weeks: list[str] | None = None) -> pd.DataFrame | None:
    """`institution_id, week, score, contributions` for every mart row of `weeks` (default: all), or None
    without a usable rule book."""
    points = _points(con, weeks)
    if points is None:
        return None
    scored, flags = points
    out = scored.join(_reasons(flags), on=KEY)
    out["contributions"] = out["contributions"].fillna("[]")
    return out[[*KEY, "score", "contributions"]]


def scores(con: duckdb.DuckDBPyConnection, weeks: list[str] | None = None) -> pd.DataFrame | None:
    """`institution_id, week, score` for every mart row of `weeks` (default: all), a chunk of weeks at a time,
    or None without a usable rule book: the backtest's baseline needs no reasons, and a national history's
    flags never fit at once."""
    weeks = weeks or [w for (w,) in con.execute(f"select distinct week from {MART}").fetchall()]
    parts = []
    for chunk in week_chunks(con, weeks) or [[]]:
        points = _points(con, chunk)
        if points is None:
            return None
        parts.append(points[0][[*KEY, "score"]])
    return pd.concat(parts, ignore_index=True)
