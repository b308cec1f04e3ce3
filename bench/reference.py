"""(b) The reference: one hand-written DuckDB statement (`reference.sql`) over the converted Parquet files."""

from __future__ import annotations

from pathlib import Path

import duckdb

from bench.convert import CORE_FEEDS

SQL = Path(__file__).with_name("reference.sql")


def reference_indicators(con: duckdb.DuckDBPyConnection, parquet: Path) -> duckdb.DuckDBPyRelation:
    """The core indicators per institution and week, as a relation over views of `parquet/<feed>.parquet`."""
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    for feed in CORE_FEEDS:
        con.execute(f"CREATE OR REPLACE VIEW {feed} AS SELECT * FROM read_parquet('{parquet / f'{feed}.parquet'}')")
    return con.sql(SQL.read_text(encoding="utf-8"))
