"""Compute `marts.institution_week_indicators` from the staging tables, set-based in DuckDB.

The SQL lives beside this file in `sql/`: four numbered steps (`_sources`, `_calendar`, `_state`,
`_weekly`) build temporary tables over a dense grid of institutions x ISO weeks, then one SELECT per
indicator (`sql/<name>.sql`, returning the grid key `k` and the value) becomes a temporary table of the
same name, and the mart joins them all on `k`. Windows over the dense grid make "the 4 weeks ending at
week end" a row frame, so the whole history is computed at once with no Python loop over institutions
or weeks.
"""

from __future__ import annotations

import duckdb

from data_contracts.feeds import ORDER_CAP_CLASS_HOURS, ORDER_CAP_MONTHS
from indicators.registry import INDICATORS, NAMES, SQL_DIR

MART = "marts.institution_week_indicators"
STEPS = ("_sources", "_calendar", "_state", "_weekly")
TEMP_TABLES = (
    "ind_orders", "ind_consumptions", "ind_refunds", "ind_movements", "ind_complaints", "ind_evaluations",
    "ind_filings", "ind_calendar", "ind_institutions", "ind_state", "ind_weekly", "ind_selected_weeks",
)
IDENTITY_COLUMNS = (
    "institution_id", "week", "week_start", "week_end", "province_code", "county_code", "name", "category", "mode",
)


def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def _create_macros(con: duckdb.DuckDBPyConnection, as_of_delivery: bool) -> None:
    """Parameters the SQL reads: when a row is known, and the regulatory cap on one order."""
    known = (
        "greatest(ts, coalesce(delivered::TIMESTAMPTZ, ts))" if as_of_delivery else "ts"
    )
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_known_at(ts, delivered) AS {known}")
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_order_cap_hours() AS {int(ORDER_CAP_CLASS_HOURS)}")
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_order_cap_months() AS {int(ORDER_CAP_MONTHS)}")


def _create_indicator_tables(con: duckdb.DuckDBPyConnection) -> None:
    """One narrow temporary table (k, value) per indicator, named after it, in registry order (so
    coverage_ratio can read prepaid_liability_fen); narrow tables keep memory low at national scale."""
    for i in INDICATORS:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {i.name} AS {_sql(i.name)}")


def mart_select() -> str:
    """The SELECT of the mart's rows: active grid rows of the selected weeks, one column per indicator."""
    identity = ", ".join(f"s.{c}" for c in IDENTITY_COLUMNS)
    values = ",\n    ".join(f"{i.name}.{i.name}::DOUBLE AS {i.name}" for i in INDICATORS)
    joins = "\n".join(f"LEFT JOIN {i.name} USING (k)" for i in INDICATORS)
    return (
        f"SELECT {identity},\n    {values}\nFROM ind_state AS s\n{joins}\n"
        "WHERE s.is_active AND s.week IN (SELECT week FROM ind_selected_weeks)"
    )


def compute_institution_week_indicators(
    con: duckdb.DuckDBPyConnection, weeks: list[str] | None = None, as_of_delivery: bool = False
) -> int:
    """Write the mart for every week in the data, or replace only `weeks` (late rows recompute past weeks).

    `as_of_delivery=True` counts each row only from its delivery date on (the view known at the time, for
    leakage tests); the default counts rows in the week they happened. Returns the number of rows written.
    """
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    _create_macros(con, as_of_delivery)
    try:
        for step in STEPS:
            con.execute(_sql(step))
        if weeks is None:
            con.execute("CREATE OR REPLACE TEMP TABLE ind_selected_weeks AS SELECT week FROM ind_calendar")
        else:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ind_selected_weeks AS SELECT unnest(?::VARCHAR[]) AS week", [weeks]
            )
        _create_indicator_tables(con)
        select = mart_select()
        if weeks is None:
            con.execute(f"CREATE OR REPLACE TABLE {MART} AS {select}")
        else:
            con.begin()  # readers never see the replaced weeks half-written
            try:
                con.execute(f"CREATE TABLE IF NOT EXISTS {MART} AS {select} LIMIT 0")
                con.execute(f"DELETE FROM {MART} WHERE week IN (SELECT week FROM ind_selected_weeks)")
                con.execute(f"INSERT INTO {MART} BY NAME {select}")
                con.commit()
            except Exception:
                con.rollback()
                raise
        return con.execute(
            f"SELECT count(*) FROM {MART} WHERE week IN (SELECT week FROM ind_selected_weeks)"
        ).fetchone()[0]
    finally:
        for table in TEMP_TABLES + NAMES:
            con.execute(f"DROP TABLE IF EXISTS temp.{table}")
