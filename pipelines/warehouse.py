"""The DuckDB warehouse: connections and the staging tables every layer reads.

Library code (no Dagster): tests and the dashboard open the same file through `connect`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import duckdb

from data_contracts.feeds import FEEDS, REPORTING_TZ, Feed, staging_columns
from tutorwatch import settings

SCHEMAS = ("ops", "quarantine", "staging", "marts")
FRAMES_SHARE = 0.25  # of the budget, DuckDB's while Python holds frames it reads chunk by chunk (`beside_frames`)


def connect(path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with the reporting time zone, no extension downloads and DuckDB's share of the
    memory budget.

    DuckDB's allocator keeps memory its queries freed until a later allocation or a flush; its background
    threads hand it back to the system. Without them a national scoring run peaked 0.7 GiB higher (4.1 GiB
    instead of 3.4 GiB), memory the process no longer used."""
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
              "allocator_background_threads": True}
    if limit := settings.duckdb_memory_limit():
        config["memory_limit"] = limit
    con = duckdb.connect(str(path), read_only=read_only, config=config)
    con.execute(f"SET TimeZone = '{REPORTING_TZ}'")
    return con


@contextmanager
def memory_lowered(con: duckdb.DuckDBPyConnection, keep: str = "256MB") -> Iterator[None]:
    """DuckDB's memory limit lowered to `keep` while Python holds large frames: its buffer pool keeps the blocks
    its queries read (724 MiB at national after training's `load_dataset`; the process was 0.94 GiB smaller once
    they were evicted), memory the frames need more. Then back to the warehouse's share of the budget."""
    try:
        con.execute(f"SET memory_limit = '{keep}'")
    except duckdb.Error:  # pinned memory it cannot evict: then it keeps what it holds
        pass
    try:
        yield
    finally:
        limit = settings.duckdb_memory_limit()
        con.execute(f"SET memory_limit = '{limit}'" if limit else "RESET memory_limit")


def beside_frames(con: duckdb.DuckDBPyConnection) -> AbstractContextManager[None]:
    """DuckDB held to `FRAMES_SHARE` of the budget while Python reads and holds frames chunk by chunk (a contract
    check's, training's dataset, a chunk of scores, the warnings' rule flags): the blocks it would cache are read
    once, the frames need the room. At national, each alone, with 1 GB instead of 2.4: the bank movements'
    contract check 3,417 → 1,894 MiB, scoring 3,224 → 2,413, the warnings 3,020 → 1,688, training's loading
    0.6-1.1 GB lower, each as fast."""
    share = settings.duckdb_memory_limit(FRAMES_SHARE)
    return memory_lowered(con, share) if share else nullcontext()


def staging_ddl(feed: Feed, table: str) -> str:
    cols = ", ".join(f'"{c.name}" {c.type}' for c in staging_columns(feed))
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


def create_staging_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schemas and, per feed, `staging.<feed>` (current) and `staging.<feed>_history`."""
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for feed in FEEDS.values():
        con.execute(staging_ddl(feed, f"staging.{feed.name}"))
        con.execute(staging_ddl(feed, f"staging.{feed.name}_history"))
        con.execute(f"ALTER TABLE staging.{feed.name}_history ADD COLUMN IF NOT EXISTS _superseded_at TIMESTAMPTZ")
    con.execute(
        """CREATE TABLE IF NOT EXISTS staging.bank_continuity_breaks (
            bank_code VARCHAR, account_id VARCHAR, institution_id VARCHAR, movement_id VARCHAR,
            booked_at TIMESTAMPTZ, week VARCHAR, expected_balance_fen BIGINT, reported_balance_fen BIGINT,
            delta_fen BIGINT)"""
    )
    con.execute(
        """CREATE TABLE IF NOT EXISTS ops.files (
            file_name VARCHAR, feed VARCHAR, sha256 VARCHAR, delivery_date DATE, status VARCHAR, reason VARCHAR,
            rows_delivered BIGINT, rows_inserted BIGINT, rows_corrected BIGINT, rows_unchanged BIGINT,
            rows_quarantined BIGINT, amount_fen_delivered BIGINT, amount_fen_loaded BIGINT,
            amount_fen_quarantined BIGINT, loaded_at TIMESTAMPTZ)"""
    )
    con.execute(
        """CREATE TABLE IF NOT EXISTS quarantine.rows (
            feed VARCHAR, file_name VARCHAR, row_number BIGINT, rule VARCHAR, detail VARCHAR, row_json JSON,
            quarantined_at TIMESTAMPTZ, released_at TIMESTAMPTZ)"""
    )
