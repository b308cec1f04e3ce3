"""Model features: each indicator's level, its changes and trailing extremes, its rank in the province-week,
money indicators per yuan of prepaid liability, counts from the feeds (sales and class hours against the
institution's own earlier weeks, complaints, refund requests, ratings) with their ranks in the province-week, and
the staff count of the filings against earlier filings.

Every feature of a week reads that week's row and earlier rows of the same institution only (plus the other
institutions of the same province-week for ranks), so a score never sees the future; the mart itself is
computed as of the week's end. Any range of weeks can be featured from its rows plus `LOOKBACK_WEEKS` of
earlier rows, so scoring reads a few weeks at a time.
"""

from __future__ import annotations

import ctypes
import mmap
from collections.abc import Callable
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from models.metrics import week_monday

SQL_DIR = Path(__file__).resolve().parent / "sql"

MART = "marts.institution_week_indicators"
KEY_COLUMNS = ("institution_id", "week", "week_start", "week_end", "province_code", "county_code", "name",
               "category", "mode")
FEATURED_KEYS = ("institution_id", "week", "week_start", "province_code")  # all that features, training and
# scores read of the keys: the names and codes are strings, slow to load (a national chunk's load 6 → 3 s)
SEPARATOR = "__"  # `<indicator>__<derivation>`: reasons sum a feature under the indicator before it
CHANGE_WEEKS = (1, 4, 8)  # this week minus the same institution's value n weeks earlier
TRAILING_WEEKS = 8  # max and min over the last 8 weeks (this one included)
LOOKBACK_WEEKS = max(*CHANGE_WEEKS, TRAILING_WEEKS - 1)  # earlier weeks a week's features read
DTYPE = np.float32  # 7 significant digits are plenty for a feature, and half of float64's memory
CHUNK_ROWS = 500_000  # institution-weeks featured at a time (a national week is ~150,000)
LIABILITY = "prepaid_liability_fen"
PER_LIABILITY = ("release_beyond_consumed_fen", "reserve_shortfall_fen", "adjustment_out_fen_4w",
                 "supervised_balance_fen")  # sizes only mean something against the money owed to parents
FEED_COUNTS = (  # `models/sql/feed_features.sql`, each under the indicator whose story it tells, each ranked
    "sales_spike_ratio__sales_4w_vs_own", "consumption_drop__hours_4w_vs_own",
    "complaint_surge__complaints_4w", "complaint_surge__complaints_8w", "complaint_surge__complaints_8w_per_order",
    "refund_request_surge__refunds_4w", "refund_request_surge__refunds_8w",
    "refund_request_surge__refunds_8w_per_order", "rating_drop__mean_stars_8w", "rating_drop__low_share_8w",
)
STAFF_CHANGES = (  # the same query: staff counts of the filings against earlier filings (mostly 1, never ranked)
    "staff_unverified_share__staff_vs_13w", "staff_unverified_share__staff_vs_max_26w",
    "staff_unverified_share__largest_staff_cut_26w",
)
FEED_FEATURES = FEED_COUNTS + STAFF_CHANGES
FEED_HISTORY_WEEKS = 25  # the longest window of the feed features (orders of the last 26 weeks)
READ_WEEKS = max(LOOKBACK_WEEKS, FEED_HISTORY_WEEKS)  # a changed row changes its institution's features this long


def indicator_columns(con: duckdb.DuckDBPyConnection, table: str = MART) -> list[str]:
    """The mart's indicator columns: the registry's names when it is importable, else every DOUBLE after `mode`."""
    described = con.execute(f"DESCRIBE {table}").fetchall()
    doubles = [name for name, kind, *_ in described if name not in KEY_COLUMNS and kind == "DOUBLE"]
    try:
        from indicators.registry import NAMES
    except ImportError:
        return doubles
    return [n for n in NAMES if n in doubles] or doubles


def feature_names(indicators: list[str]) -> list[str]:
    names = []
    for i in indicators:
        names += [i, *(f"{i}{SEPARATOR}chg{n}" for n in CHANGE_WEEKS),
                  f"{i}{SEPARATOR}max{TRAILING_WEEKS}", f"{i}{SEPARATOR}min{TRAILING_WEEKS}", f"{i}{SEPARATOR}rank"]
    if LIABILITY in indicators:
        names += [f"{i}{SEPARATOR}per_liability" for i in PER_LIABILITY if i in indicators]
    feeds = [f for f in FEED_FEATURES if base_indicator(f) in indicators]
    return names + feeds + [f"{f}_rank" for f in feeds if f in FEED_COUNTS]


def base_indicator(feature: str) -> str:
    """The indicator a feature is derived from (a change or rank belongs to its level's indicator)."""
    return feature.split(SEPARATOR)[0]


def week_range(con: duckdb.DuckDBPyConnection, table: str = MART) -> tuple[date, date] | None:
    """Monday of the first and of the last week in the mart (None when it is empty)."""
    first, last = con.execute(f"select min(week_start)::date, max(week_start)::date from {table}").fetchone()
    return None if first is None else (first, last)


def load_mart(con: duckdb.DuckDBPyConnection, first_week: date | None = None, last_week: date | None = None,
              table: str = MART, keys: tuple[str, ...] = KEY_COLUMNS, institutions: list[str] | None = None,
              ) -> tuple[pd.DataFrame, list[str]]:
    """Mart rows of the weeks starting `first_week` … `last_week` (default: all) of `institutions` (default: all),
    sorted by week and institution, with the indicator column names; `keys` are the key columns to load."""
    indicators = indicator_columns(con, table)
    cols = ", ".join(f'"{c}"' for c in (*keys, *indicators))
    bounds = week_range(con, table) or (date.min, date.min)
    only = "" if institutions is None else "and institution_id in (select unnest(?::varchar[])) "
    frame = con.execute(f"select {cols} from {table} where week_start::date between ? and ? {only}"
                        "order by week, institution_id",
                        [first_week or bounds[0], last_week or bounds[1], *([] if institutions is None else [institutions])]
                        ).df()
    for column in {"week_start", "week_end"} & set(keys):
        frame[column] = pd.to_datetime(frame[column])
    frame[indicators] = frame[indicators].astype("float64")  # levels stay exact: reasons quote them in fen
    return frame, indicators


def _history_features(frame: pd.DataFrame, indicators: list[str], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Changes and trailing extremes per institution over calendar weeks (a week without a row is missing), for
    the rows of `frame` selected by the mask `rows`; every row of `frame` is history.

    Rows go into an institutions × weeks × indicators grid, so "n weeks earlier" is a step back along weeks.
    Only the selected rows' cells are read: a scored chunk features 3 of its 11 weeks."""
    institution = frame["institution_id"].astype("category").cat.codes.to_numpy()
    week = ((frame["week_start"] - frame["week_start"].min()).dt.days // 7).to_numpy()
    grid = np.full((institution.max() + 1, week.max() + 1, len(indicators)), np.nan, dtype=DTYPE)
    for k, name in enumerate(indicators):  # a column at a time: `matrix` of the whole chunk held it twice in float64
        grid[institution, week, k] = matrix(frame, [name])[:, 0]
    institution, week = institution[rows], week[rows]
    now = grid[institution, week]
    out = {}
    for n in CHANGE_WEEKS:
        earlier = np.where((week >= n)[:, None], grid[institution, np.maximum(week - n, 0)], np.nan)
        out.update(zip((f"{i}{SEPARATOR}chg{n}" for i in indicators), (now - earlier).T))
    highest, lowest = np.empty_like(now), np.empty_like(now)
    for t in np.unique(week):  # fmax/fmin skip missing weeks; an all-missing window stays missing
        at = week == t
        window = grid[:, max(0, t - TRAILING_WEEKS + 1):t + 1]
        highest[at] = np.fmax.reduce(window, axis=1)[institution[at]]
        lowest[at] = np.fmin.reduce(window, axis=1)[institution[at]]
    out.update(zip((f"{i}{SEPARATOR}max{TRAILING_WEEKS}" for i in indicators), highest.T))
    out.update(zip((f"{i}{SEPARATOR}min{TRAILING_WEEKS}" for i in indicators), lowest.T))
    return out


def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def feed_features(con: duckdb.DuckDBPyConnection, first: date, last: date, institutions: list[str] | None = None
                  ) -> pd.DataFrame | None:
    """`FEED_FEATURES` of the mart rows of the weeks starting `first` … `last` (keyed by institution and week) of
    `institutions` (default: all), or None when the warehouse has no stored weekly sums.

    Slow declines show in the feeds before any indicator moves: a few more complaints and refund requests over
    8 weeks, ratings slipping, sales and class hours below the institution's own earlier weeks, and a filing that
    cuts the staff. The weeks' events are counted once, by the indicators (`indicators.compute.SUMS`, the same
    weeks as the mart's), not again from the feeds here."""
    from indicators.compute import exists  # like the registry in `indicator_columns`: only where it is read

    if not exists(con, "marts", "institution_week_sums", "low_ratings"):  # older sums: until recomputed
        return None
    sql = _sql("feed_features").format(
        institutions="true" if institutions is None else "institution_id in (select unnest($institutions::varchar[]))")
    params = {"history": first - timedelta(weeks=FEED_HISTORY_WEEKS), "first": first, "last": last,
              "until": last + timedelta(weeks=1)}
    return con.execute(sql, params if institutions is None else {**params, "institutions": institutions}).df()


def add_features(frame: pd.DataFrame, indicators: list[str], first: date | None = None,
                 feeds: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows of the weeks from `first` on (default: all) with every feature of `feature_names(indicators)`;
    earlier rows of `frame` are only read as history, never featured (a national week has 150,000 rows and
    its history 8 more weeks of them).

    `frame` must hold `LOOKBACK_WEEKS` of earlier rows for the history features of its first weeks to be
    complete (`load_features` does that). `feeds` are `feed_features` of those weeks (missing: no value)."""
    target = np.ones(len(frame), dtype=bool) if first is None else (frame["week_start"] >= pd.Timestamp(first)).to_numpy()
    derived = _history_features(frame, indicators, target) if len(frame) else {}
    rows = frame[target].reset_index(drop=True)
    names = feature_names(indicators)
    counted = [f for f in FEED_FEATURES if f in names]
    if feeds is not None and counted:
        placed = rows[["institution_id", "week"]].merge(feeds, on=["institution_id", "week"], how="left")
        derived.update({f: placed[f].to_numpy(DTYPE) for f in counted})
    else:
        derived.update({f: np.full(len(rows), np.nan, dtype=DTYPE) for f in counted})
    counts = [f for f in counted if f in FEED_COUNTS]
    ranked = rows[["province_code", "week", *indicators]].assign(**{f: derived[f] for f in counts})
    ranks = ranked.groupby(["province_code", "week"])[[*indicators, *counts]].rank(pct=True)
    derived.update({f"{i}{SEPARATOR}rank": ranks[i].to_numpy(DTYPE) for i in indicators})
    derived.update({f"{f}_rank": ranks[f].to_numpy(DTYPE) for f in counts})
    if LIABILITY in indicators:
        liability = rows[LIABILITY].where(rows[LIABILITY] > 0)
        derived.update({f"{i}{SEPARATOR}per_liability": (rows[i] / liability).to_numpy(DTYPE)
                        for i in PER_LIABILITY if i in indicators})
    extra = pd.DataFrame({n: derived[n] for n in names if n not in rows}, index=rows.index)
    return pd.concat([rows, extra], axis=1)


def load_features(con: duckdb.DuckDBPyConnection, first_week: date | None = None, last_week: date | None = None,
                  provinces: list[str] | None = None) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Mart rows of the weeks starting `first_week` … `last_week` (default: all) with their features (read
    with `LOOKBACK_WEEKS` of earlier rows; keys: `FEATURED_KEYS`); returns the frame, the indicator names and the
    feature names.

    With `provinces`, only the institutions with a row of those provinces in those weeks are read: every
    province-week of `provinces` is whole, so its ranks are right (rows of other province-weeks may come along,
    their ranks are not)."""
    bounds = week_range(con)
    first = first_week or (bounds[0] if bounds else None)
    last = last_week or (bounds[1] if bounds else None)
    history_from = first - timedelta(weeks=LOOKBACK_WEEKS) if first else None
    institutions = None if provinces is None else [i for (i,) in con.execute(
        f"select distinct institution_id from {MART} where week_start::date between ? and ? "
        "and province_code in (select unnest(?::varchar[]))", [first, last, list(provinces)]).fetchall()]
    mart, indicators = load_mart(con, history_from, last_week, keys=FEATURED_KEYS, institutions=institutions)
    feeds = feed_features(con, first, last, institutions) if first else None
    return add_features(mart, indicators, first, feeds), indicators, feature_names(indicators)


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, None on other C libraries (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Hand back to the system what the process has freed but its allocators keep. Frames keep their strings in
    Arrow arrays (`.df()` too), and Arrow's pool (mimalloc) keeps freed pages for itself: ~0.2 GB after each
    national chunk of features, 1.5 GB after a test block was read from Parquet. glibc's heap keeps the rest:
    after national training 0.47 GB of it was free but resident, under the scoring that followed in the same
    process. Called once a chunk's frames are gone, and before training and scoring."""
    pa.default_memory_pool().release_unused()
    if trim := _malloc_trim():
        trim(0)


def release_mapped(data: pd.DataFrame | np.ndarray) -> None:
    """Drop the process's pages of any file the array, or the frame's float columns, map (`np.memmap` and its
    views): the pages stay in the system's file cache and are read back on the next touch, but no longer count
    in the process's memory. A no-op for data on the heap."""
    arrays = [data] if isinstance(data, np.ndarray) else [
        data[c].to_numpy() for c, dtype in data.dtypes.items() if isinstance(dtype, np.dtype) and dtype.kind == "f"]
    maps = {}
    for base in arrays:
        while isinstance(base, np.ndarray):
            base = base.base
        if isinstance(base, mmap.mmap):
            maps[id(base)] = base
    for mapping in maps.values():
        mapping.madvise(mmap.MADV_DONTNEED)


def matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The feature matrix in float64 (what the models compute in), infinities as missing (HGB and the imputer
    treat NaN as missing)."""
    values = frame[features].to_numpy(dtype="float64", copy=True)
    values[~np.isfinite(values)] = np.nan
    return values


def week_chunks(con: duckdb.DuckDBPyConnection, weeks: list[str], max_rows: int = CHUNK_ROWS) -> list[list[str]]:
    """`weeks` cut into runs of consecutive weeks holding at most `max_rows` mart rows (at least one week each),
    so a national warehouse is featured and scored a few weeks at a time."""
    sizes = dict(con.execute(f"select week, count(*) from {MART} group by week").fetchall())
    chunks, rows, previous = [], 0, None
    for week in sorted(weeks):
        follows = previous is not None and (week_monday(week) - week_monday(previous)).days == 7
        if not chunks or not follows or rows + sizes.get(week, 0) > max_rows:
            chunks.append([])
            rows = 0
        chunks[-1].append(week)
        rows += sizes.get(week, 0)
        previous = week
    return chunks
