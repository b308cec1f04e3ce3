"""Bank continuity: every supervision-account balance must follow from the previous one and the movement.

A break means a movement is missing or altered upstream; it is itself a risk signal (see the standard).
"""

from __future__ import annotations

import duckdb

from data_contracts.feeds import INFLOW_KINDS, OUTFLOW_KINDS
from data_contracts.rules import sql_list
from pipelines.ingest.loading import prepare, sql_file


def compute_continuity_breaks(con: duckdb.DuckDBPyConnection) -> int:
    """Rebuild `staging.bank_continuity_breaks` from `staging.account_movements`; returns the break count."""
    prepare(con)
    sql = sql_file("continuity_breaks.sql").format(inflow=sql_list(INFLOW_KINDS), outflow=sql_list(OUTFLOW_KINDS))
    con.execute("BEGIN TRANSACTION")
    con.execute("DELETE FROM staging.bank_continuity_breaks")
    con.execute(f"INSERT INTO staging.bank_continuity_breaks {sql}")
    con.execute("COMMIT")
    return con.execute("SELECT count(*) FROM staging.bank_continuity_breaks").fetchall()[0][0]
