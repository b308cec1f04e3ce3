"""(c) The core indicators in pandas, as an analyst would write them: load the Parquet files, group, pivot
to a weeks x institutions table and use cumulative sums and rolling windows down the weeks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

TZ = "Asia/Shanghai"
CORE = ("prepaid_liability_fen", "supervised_balance_fen", "coverage_ratio", "release_beyond_consumed_fen",
        "sales_spike_ratio", "refund_request_surge", "complaint_surge")
# consumptions + bank movements per chunk of institutions: ~3 GB of frames (the national history at once is ~30 GB)
PANDAS_CHUNK_ROWS = 10_000_000


def _week(ts: pd.Series) -> pd.Series:
    """Monday of the ISO week (Asia/Shanghai) of each timestamp, as a naive date-time."""
    local = ts.dt.tz_convert(TZ).dt.tz_localize(None).dt.normalize()
    return local - pd.to_timedelta(local.dt.day_of_week, unit="D")


def _read(parquet: Path, feed: str, columns: list[str], ids: np.ndarray | None = None) -> pd.DataFrame:
    """`columns` of a feed's Parquet file, only the rows of institutions `ids` when given (filtered while reading)."""
    filters = None if ids is None else [("institution_id", "in", ids.tolist())]
    return pd.read_parquet(parquet / f"{feed}.parquet", columns=columns, filters=filters)


def _round(table: pd.DataFrame) -> pd.DataFrame:
    """Half away from zero, as SQL's round() (numpy rounds half to even)."""
    return np.sign(table) * np.floor(table.abs() + 0.5)


def _wide(frame: pd.DataFrame, value: str, weeks: pd.DatetimeIndex, institutions: pd.Index) -> pd.DataFrame:
    """Weekly sums as a weeks x institutions table, 0 where nothing happened."""
    table = frame.groupby(["week", "institution_id"])[value].sum().unstack(fill_value=0)
    return table.reindex(index=weeks, columns=institutions, fill_value=0).astype("float64")


def _paid_orders(parquet: Path, columns: list[str], ids: np.ndarray | None = None) -> pd.DataFrame:
    orders = _read(parquet, "orders", [*columns, "status"], ids)
    return orders[(orders["status"] == "paid") & (orders["paid_fen"] > 0) & (orders["class_hours"] > 0)]


def _valid_movements(movements: pd.DataFrame) -> pd.DataFrame:
    return movements[(movements["amount_fen"] > 0) & (movements["balance_after_fen"] >= 0)]


def _calendar(parquet: Path) -> pd.DatetimeIndex:
    """Every ISO week from the first to the last time of the rows counted, over all institutions (read column by
    column and reduced at once, so it fits beside nothing else)."""
    orders = _paid_orders(parquet, ["order_id", "paid_fen", "class_hours", "paid_at"])
    consumptions = _read(parquet, "consumptions", ["order_id", "consumed_at", "class_hours"])
    consumed = consumptions.loc[(consumptions["class_hours"] > 0) & consumptions["order_id"].isin(orders["order_id"]),
                                "consumed_at"]
    del consumptions
    movements = _valid_movements(_read(parquet, "account_movements", ["booked_at", "amount_fen", "balance_after_fen"]))
    times = [orders["paid_at"], consumed, _read(parquet, "refunds", ["requested_at"])["requested_at"],
             movements["booked_at"], _read(parquet, "complaints", ["received_at"])["received_at"],
             _read(parquet, "evaluations", ["rated_at"])["rated_at"]]
    first = _week(pd.Series([min(t.min() for t in times if len(t))]))[0]
    last = _week(pd.Series([max(t.max() for t in times if len(t))]))[0]
    return pd.date_range(first, last, freq="7D")


def chunks_for(parquet: Path, rows_per_chunk: int) -> int:
    """How many chunks of institutions keep about `rows_per_chunk` consumptions and bank movements in each."""
    rows = sum(pq.ParquetFile(parquet / f"{feed}.parquet").metadata.num_rows
               for feed in ("consumptions", "account_movements"))
    return max(1, -(-rows // rows_per_chunk))


def pandas_indicators(parquet: Path, chunks: int = 1) -> pd.DataFrame:
    """institution_id, week ('YYYY-Www') and the seven core indicators for every institution and week, computed
    for `chunks` groups of institutions one after the other (every indicator is per institution; a national
    history in one piece needs ~30 GB)."""
    weeks = _calendar(parquet)
    ids = np.sort(_read(parquet, "institutions", ["institution_id"])["institution_id"].unique())
    return pd.concat([_chunk_indicators(parquet, weeks, part) for part in np.array_split(ids, chunks) if len(part)],
                     ignore_index=True)


def _chunk_indicators(parquet: Path, weeks: pd.DatetimeIndex, ids: np.ndarray) -> pd.DataFrame:
    institutions = pd.Index(ids)
    orders = _paid_orders(parquet, ["order_id", "institution_id", "paid_fen", "class_hours", "paid_at"], ids)
    orders = orders.assign(week=_week(orders["paid_at"]))
    consumptions = _read(parquet, "consumptions",
                         ["consumption_id", "order_id", "institution_id", "consumed_at", "class_hours"], ids)
    consumptions = consumptions[consumptions["class_hours"] > 0].merge(
        orders[["order_id", "paid_fen", "class_hours"]], on="order_id", suffixes=("", "_order"))
    consumptions["value_fen"] = consumptions["paid_fen"] * consumptions["class_hours"] / consumptions["class_hours_order"]
    consumptions["week"] = _week(consumptions["consumed_at"])
    refunds = _read(parquet, "refunds", ["refund_id", "order_id", "institution_id", "requested_at", "requested_fen",
                                         "status", "paid_at"], ids)
    refunds["week"] = _week(refunds["requested_at"])
    movements = _valid_movements(_read(parquet, "account_movements", [
        "movement_id", "bank_code", "account_id", "institution_id", "booked_at", "kind", "amount_fen",
        "balance_after_fen"], ids))
    movements["week"] = _week(movements["booked_at"])
    complaints = _read(parquet, "complaints", ["institution_id", "received_at"], ids)
    complaints["week"] = _week(complaints["received_at"])

    # per order, consumed value and paid refunds in time order, capped at the order's paid_fen
    paid_refunds = refunds[(refunds["status"] == "paid") & refunds["paid_at"].notna()]
    events = pd.concat([
        consumptions[["institution_id", "order_id", "consumed_at", "consumption_id", "value_fen"]].set_axis(
            ["institution_id", "order_id", "at", "id", "amount_fen"], axis=1).assign(tie=0),
        paid_refunds[["institution_id", "order_id", "paid_at", "refund_id", "requested_fen"]].set_axis(
            ["institution_id", "order_id", "at", "id", "amount_fen"], axis=1).assign(tie=1),
    ]).merge(orders[["order_id", "paid_fen"]], on="order_id")
    events = events.sort_values(["order_id", "at", "tie", "id"])
    running = events.groupby("order_id")["amount_fen"].cumsum()
    events["settled_fen"] = (np.minimum(running, events["paid_fen"])
                             - np.minimum(running - events["amount_fen"], events["paid_fen"]))
    events["week"] = _week(events["at"])

    # each account's balance after its last movement of the week, minus the previous week's
    closing = (movements.sort_values(["bank_code", "account_id", "week", "booked_at", "movement_id"])
               .groupby(["bank_code", "account_id", "week"], as_index=False)
               .agg(institution_id=("institution_id", "last"), balance=("balance_after_fen", "last")))
    closing["balance_change_fen"] = closing["balance"] - closing.groupby(["bank_code", "account_id"])[
        "balance"].shift(fill_value=0)

    paid = _wide(orders, "paid_fen", weeks, institutions)
    liability = _round((paid - _wide(events, "settled_fen", weeks, institutions)).cumsum())
    balance = _wide(closing, "balance_change_fen", weeks, institutions).cumsum()
    releases = movements[movements["kind"] == "release"]
    beyond = _round((_wide(releases, "amount_fen", weeks, institutions)
                     - _wide(consumptions, "value_fen", weeks, institutions)).cumsum())
    spike = paid / paid.shift(1).rolling(8, min_periods=1).median().replace(0, np.nan)

    def surge(frame: pd.DataFrame) -> pd.DataFrame:
        counts = _wide(frame.assign(n=1), "n", weeks, institutions)
        return counts / counts.shift(1).rolling(8, min_periods=1).mean().fillna(0).clip(lower=1)

    wide = {
        "prepaid_liability_fen": liability,
        "supervised_balance_fen": balance,
        "coverage_ratio": balance / liability.replace(0, np.nan),
        "release_beyond_consumed_fen": beyond,
        "sales_spike_ratio": spike,
        "refund_request_surge": surge(refunds),
        "complaint_surge": surge(complaints),
    }
    long = pd.concat({name: table.stack() for name, table in wide.items()}, axis=1)
    long.index.names = ["week_start", "institution_id"]
    long = long.reset_index()
    long.insert(1, "week", long.pop("week_start").dt.strftime("%G-W%V"))
    return long[["institution_id", "week", *CORE]]
