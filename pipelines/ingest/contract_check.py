"""The contract check of a feed: great-expectations on the rows delivered in the last run, against routing.

It passes iff every row the GX suite finds breaking a rule is held in quarantine and none of them
reached staging: the GX suite is an independent reading of the same rules, so this proves the SQL
routing lost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from data_contracts.expectations import validate_batch
from data_contracts.feeds import FEEDS
from pipelines.ingest.loading import batch_relation_sql, batch_table, prepare


@dataclass(frozen=True)
class ContractOutcome:
    feed: str
    rows_checked: int
    unexpected_per_rule: dict[str, int]
    escaped_quarantine: int  # flagged rows not held in quarantine
    reached_staging: int     # flagged rows present in staging

    @property
    def passed(self) -> bool:
        return self.escaped_quarantine == 0 and self.reached_staging == 0

    @property
    def rows_flagged(self) -> int:
        return sum(self.unexpected_per_rule.values())


def check_contract(con: duckdb.DuckDBPyConnection, feed_name: str) -> ContractOutcome:
    prepare(con)
    frame = con.sql(batch_relation_sql(FEEDS[feed_name], batch_table(feed_name))).df()
    flagged = validate_batch(feed_name, frame) if len(frame) else {}
    rows = set().union(*flagged.values()) if flagged else set()
    held = set(con.execute(
        "SELECT file_name, row_number FROM quarantine.rows WHERE feed = ? AND released_at IS NULL", [feed_name]
    ).fetchall())
    staged = set(con.execute(f"SELECT _file, _row FROM staging.{feed_name}_history").fetchall())
    return ContractOutcome(
        feed=feed_name,
        rows_checked=len(frame),
        unexpected_per_rule={rule: len(r) for rule, r in sorted(flagged.items()) if r},
        escaped_quarantine=len(rows - held),
        reached_staging=len(rows & staged),
    )
