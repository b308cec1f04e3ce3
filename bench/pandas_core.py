"""(c) The core indicators in pandas, as an analyst would write them: load the Parquet files, group, pivot
to a weeks x institutions table and use cumulative sums and rolling windows down the weeks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TZ = "Asia/Shanghai"
CORE = ("prepaid_liability_fen", "supervised_balance_fen", "coverage_ratio", "release_beyond_consumed_fen",
        "sales_spike_ratio", "refund_request_surge", "complaint_surge")


def _week(ts: pd.Series) -> pd.Series:
    """Monday of the ISO week (Asia/Shanghai) of each timestamp, as a naive date-time."""
    local = ts.dt.tz_convert(TZ).dt.tz_localize(None).dt.normalize()
    return local - pd.to_timedelta(local.dt.dayofweek, unit="D")


def _read(parquet: Path, feed: str, columns: list[str]) -> pd.DataFrame:
    return pd.read_parquet(parquet / f"{feed}.parquet", columns=columns)


def _round(table: pd.DataFrame) -> pd.DataFrame:
    """Half away from zero, as SQL's round() (numpy rounds half to even)."""
    return np.sign(table) * np.floor(table.abs() + 0.5)


def _wide(frame: pd.DataFrame, value: str, weeks: pd.DatetimeIndex, institutions: pd.Index) -> pd.DataFrame:
    """Weekly sums as a weeks x institutions table, 0 where nothing happened."""
    table = frame.groupby(["week", "institution_id"])[value].sum().unstack(fill_value=0)
    return table.reindex(index=weeks, columns=institutions, fill_value=0).astype("float64")


def pandas_indicators(parquet: Path) -> pd.DataFrame:
    """institution_id, week ('YYYY-Www') and the seven core indicators for every institution and week."""
    orders = _read(parquet, "orders", ["order_id", "institution_id", "paid_fen", "class_hours", "paid_at", "status"])
    orders = orders[(orders["status"] == "paid") & (orders["paid_fen"] > 0) & (orders["class_hours"] > 0)]
    orders = orders.assign(week=_week(orders["paid_at"]))
    consumptions = _read(parquet, "consumptions",
                         ["consumption_id", "order_id", "institution_id", "consumed_at", "class_hours"])
    consumptions = consumptions[consumptions["class_hours"] > 0].merge(
        orders[["order_id", "paid_fen", "class_hours"]], on="order_id", suffixes=("", "_order"))
    consumptions["value_fen"] = consumptions["paid_fen"] * consumptions["class_hours"] / consumptions["class_hours_order"]
    consumptions["week"] = _week(consumptions["consumed_at"])
    refunds = _read(parquet, "refunds", ["refund_id", "order_id", "institution_id", "requested_at", "requested_fen",
                                         "status", "paid_at"])
    refunds["week"] = _week(refunds["requested_at"])
    movements = _read(parquet, "account_movements", ["movement_id", "bank_code", "account_id", "institution_id",
                                                     "booked_at", "kind", "amount_fen", "balance_after_fen"])
    movements = movements[(movements["amount_fen"] > 0) & (movements["balance_after_fen"] >= 0)]
    movements["week"] = _week(movements["booked_at"])
    complaints = _read(parquet, "complaints", ["institution_id", "received_at"])
    complaints["week"] = _week(complaints["received_at"])
    rated = _read(parquet, "evaluations", ["rated_at"])["rated_at"]

    times = [orders["paid_at"], consumptions["consumed_at"], refunds["requested_at"], movements["booked_at"],
             complaints["received_at"], rated]
    first = _week(pd.Series([min(t.min() for t in times if len(t))]))[0]
    last = _week(pd.Series([max(t.max() for t in times if len(t))]))[0]
    weeks = pd.date_range(first, last, freq="7D")
    institutions = pd.Index(_read(parquet, "institutions", ["institution_id"])["institution_id"].unique())

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
