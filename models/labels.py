"""Labels from the filings in staging (never from the generator's truth): abnormal closure within 8 weeks."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

SQL_DIR = Path(__file__).resolve().parent / "sql"
HORIZON_WEEKS = 8


def data_as_of(con: duckdb.DuckDBPyConnection) -> date:
    """The last day the filings are known: the latest delivery of the institutions feed, else the last week end."""
    (as_of,) = con.execute(
        """select coalesce(
               (select max(_delivery_date) from staging.institutions),
               (select max(week_end)::date from marts.institution_week_indicators))"""
    ).fetchone()
    return as_of


def label_table(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> pa.Table:
    """One row per kept institution-week, sorted by week and institution: `institution_id, week`, `label` (0/1),
    `observed` (the 8-week horizon is over at `as_of`). Rows from the closure week on, and the last week before
    an abnormal closure, are absent.

    As Arrow: a national history's 9M rows peak at 1.4 GB so, at 2.5 GB through `.df()`. DuckDB warns that an
    `execute` result turns into Arrow through one extra copy; `sql` would not, but it refuses to run beside an
    unfinished result, and a cursor has its own session (the UTC time zone, where the weeks need Shanghai's)."""
    sql = (SQL_DIR / "labels.sql").read_text(encoding="utf-8")
    result = con.execute(sql, {"as_of": as_of or data_as_of(con)})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result makes an extra copy")
        return result.to_arrow_table()


def abnormal_closures(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """`institution_id, closure_date` of every institution whose first closure filing is abnormal."""
    return con.execute(
        """select institution_id, min(record_date) as closure_date
           from staging.institutions
           where event in ('closed', 'revoked')
           group by institution_id
           having arg_min(closure_reason, record_date) = 'abnormal'
           order by institution_id"""
    ).df()


def newest_observed_week(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> str | None:
    """The latest mart week whose 8-week label horizon is over at `as_of` (what training could learn from)."""
    (week,) = con.execute(
        f"select max(week) from marts.institution_week_indicators "
        f"where week_end::date + interval {7 * HORIZON_WEEKS} day <= ?", [as_of or data_as_of(con)]).fetchone()
    return week
