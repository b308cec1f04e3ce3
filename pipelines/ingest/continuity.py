"""Bank continuity: every supervision-account balance must follow from the previous one and the movement.

A break means a movement is missing or altered upstream; it is itself a risk signal (see the standard).
The first computation covers every account; later ones only the accounts touched by movements loaded or
superseded since (`ops.continuity_runs`), from the earliest touched movement on, so a weekly run does not
re-sort the whole movement history.
"""

from __future__ import annotations

import duckdb

from data_contracts.feeds import INFLOW_KINDS, OUTFLOW_KINDS
from data_contracts.rules import sql_list
from pipelines.ingest.loading import prepare, sql_file


def _breaks_sql(movements: str) -> str:
    return sql_file("continuity_breaks.sql").format(
        inflow=sql_list(INFLOW_KINDS), outflow=sql_list(OUTFLOW_KINDS), movements=movements)


def compute_continuity_breaks(con: duckdb.DuckDBPyConnection) -> int:
    """Bring `staging.bank_continuity_breaks` up to date with `staging.account_movements`; returns the break count."""
    prepare(con)
    con.execute("CREATE TABLE IF NOT EXISTS ops.continuity_runs (computed_at TIMESTAMPTZ)")
    since = con.execute("SELECT max(computed_at) FROM ops.continuity_runs").fetchall()[0][0]
    con.execute("BEGIN TRANSACTION")
    if since is None:
        con.execute("DELETE FROM staging.bank_continuity_breaks")
        con.execute(f"INSERT INTO staging.bank_continuity_breaks {_breaks_sql('staging.account_movements')}")
    else:
        for statement in filter(str.strip, sql_file("continuity_scope.sql").split(";\n")):
            con.execute(statement, {"since": since} if "$since" in statement else None)
        con.execute(f"INSERT INTO staging.bank_continuity_breaks {_breaks_sql('_continuity_scope')}")
        con.execute("DROP TABLE _continuity_scope")
        con.execute("DROP TABLE _continuity_from")
    con.execute("DELETE FROM ops.continuity_runs")
    con.execute("INSERT INTO ops.continuity_runs VALUES (now())")
    con.execute("COMMIT")
    return con.execute("SELECT count(*) FROM staging.bank_continuity_breaks").fetchall()[0][0]
