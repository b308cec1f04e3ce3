"""Arrow tables in the feeds' column order, delivery weeks (late rows, corrections) and planted breaches.

Inside the generator dates are epoch days and timestamps local seconds (int64); the writer converts them.
Every table carries `_dlv` (index of the weekly delivery) and `_bad` (the planted breach, or null).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from data_contracts.feeds import BOOLEAN, FEEDS, VARCHAR, Feed
from tutorwatch.generator.calendar import DAY, Calendar
from tutorwatch.generator.institutions import NONE

LATE_SHARE = 0.02     # rows that miss their week's delivery and come with the next one
BAD_ROW_RATE = 0.001  # planted contract breaches
TIME_COLUMN = {"institutions": "record_date", "orders": "paid_at", "consumptions": "consumed_at",
               "refunds": "requested_at", "account_movements": "booked_at", "complaints": "received_at",
               "evaluations": "rated_at"}
UNKNOWN_ENUM = {"institutions": ("event", "merged"), "orders": ("channel", "paypal"), "refunds": ("status", "pending"),
                "account_movements": ("kind", "手续费"), "complaints": ("category", "spam")}
BAD_KINDS = {
    "institutions": ("bad_uscc", "unknown_enum", "future_timestamp"),
    "orders": ("bad_uscc", "negative_money", "unknown_enum", "future_timestamp"),
    "consumptions": ("unknown_order", "non_positive_hours"),
    "refunds": ("refund_unknown_order", "negative_money", "float_money", "unknown_enum"),
    "account_movements": ("negative_money", "unknown_enum"),
    "complaints": ("duplicate_key", "unknown_enum"),
    "evaluations": ("duplicate_key", "stars_out_of_range"),
}


def ids(prefix: str, seq: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(seq, pa.int64()), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def column(values, kind: str) -> pa.Array:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    values = np.asarray(values)
    if kind == VARCHAR:
        return pa.array(values.astype(object) if values.dtype.kind != "O" else values, pa.string(), from_pandas=True)
    if kind == BOOLEAN:
        return pa.array(values, pa.bool_(), from_pandas=True)
    values = values.astype(np.int64)
    return pa.array(values, pa.int64(), mask=values == NONE)


def table(feed: Feed, cols: dict, dlv: np.ndarray) -> pa.Table:
    arrays = [column(cols[c.name], c.type) for c in feed.columns]
    arrays += [pa.array(np.asarray(dlv, dtype=np.int32)), pa.nulls(len(dlv), pa.string())]
    return pa.Table.from_arrays(arrays, names=[*feed.column_names, "_dlv", "_bad"])


def delivery_weeks(cal: Calendar, key: np.ndarray, sec: np.ndarray, rng: np.random.Generator,
                   late_share: float = LATE_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Which versions are delivered, and in which weekly delivery.

    Versions of one key (a refund's request, decision, payment) are delivered with the week they
    happened in; only the latest per delivery survives. A version may come a week late, but never
    after its successor. Rows from before the window arrive in the first delivery (backfill).
    """
    dlv = np.maximum(cal.week_of_sec(sec), 0)
    order = np.lexsort((sec, key))
    k, d = key[order], dlv[order]
    last = np.r_[(k[1:] != k[:-1]) | (d[1:] != d[:-1]), True]
    sel, k, d = order[last], k[last], d[last]
    nxt = np.r_[np.where(k[1:] == k[:-1], d[1:], cal.weeks + 9), cal.weeks + 9]
    late = (rng.random(len(sel)) < late_share) & (nxt > d + 1) & (d < cal.weeks - 1)
    return sel, d + late


def plant_bad_rows(t: pa.Table, feed_name: str, rng: np.random.Generator, delivery_days: np.ndarray,
                   kinds: tuple[str, ...] | None = None, extra: np.ndarray | None = None) -> pa.Table:
    """Append corrupted copies of some rows (fresh keys unless the breach is a duplicate key)."""
    feed = FEEDS[feed_name]
    kinds = kinds or BAD_KINDS[feed_name]
    n = len(t)
    m = max(rng.binomial(n, BAD_ROW_RATE), len(kinds) if n > 50 else 0)  # every kind at least once
    picks = list(rng.integers(0, n, m)) if n else []
    first = int(rng.integers(0, len(kinds)))
    chosen = [kinds[(first + j) % len(kinds)] for j in range(len(picks))]
    if extra is not None:  # rows that must carry a given breach (e.g. one Chinese enum per GB18030 bank)
        picks += list(extra)
        chosen += ["unknown_enum"] * len(extra)
    if not picks:
        return t
    rows = t.take(np.asarray(picks, dtype=np.int64)).to_pylist()
    for row, kind in zip(rows, chosen, strict=True):
        _corrupt(row, kind, feed, rng, delivery_days)
        row["_bad"] = kind
    return pa.concat_tables([t, pa.Table.from_pylist(rows, schema=t.schema)])


def _corrupt(row: dict, kind: str, feed: Feed, rng: np.random.Generator, delivery_days: np.ndarray) -> None:
    if kind != "duplicate_key":
        main_key = feed.key[-1] if feed.name != "institutions" else None
        if main_key:
            row[main_key] += "X"
    if kind == "bad_uscc":
        iid = row["institution_id"]
        row["institution_id"] = iid[:17] + ("0" if iid[17] != "0" else "1")
    elif kind == "negative_money":
        row[feed.amount_column] = -abs(row[feed.amount_column] or 100)
    elif kind == "unknown_enum":
        col, value = UNKNOWN_ENUM[feed.name]
        row[col] = value
    elif kind == "future_timestamp":
        day = int(delivery_days[row["_dlv"]]) + int(rng.integers(20, 60))
        col = TIME_COLUMN[feed.name]
        row[col] = day if feed.name == "institutions" else day * DAY + 36_000
    elif kind in ("unknown_order", "refund_unknown_order"):
        row["order_id"] = f"O999{int(rng.integers(0, 10**8)):08d}"
    elif kind == "non_positive_hours":
        row["class_hours"] = 0
    elif kind == "stars_out_of_range":
        row["stars"] = int(rng.choice([0, 6]))
    elif kind == "duplicate_key":
        if feed.name == "complaints":
            row["text"] = row["text"] + "（重复提交）"
        else:
            row["stars"] = row["stars"] % 5 + 1
