"""The contract check of a feed: great-expectations on the rows delivered in the last run, against routing.

It passes iff every row the GX suite finds breaking a rule is held in quarantine and none of them
reached staging: the GX suite is an independent reading of the same rules, so this proves the SQL
routing lost nothing. It reads the batch relation the routing evaluated (`ops.last_batch_<feed>_checked`:
the typed rows and lookups; the rules themselves are GX's own). The batch is validated a group of whole
files at a time (at most CHUNK_ROWS rows), a larger file in parts cut by a hash of the feed's key, so memory
follows the chunk, not the batch, and DuckDB holds a smaller share meanwhile; the flagged rows are compared with
quarantine and staging in DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from data_contracts.expectations import validate_batches
from data_contracts.feeds import FEEDS
from data_contracts.rules import q
from pipelines.ingest.loading import checked_table, prepare
from pipelines.warehouse import beside_frames

CHUNK_ROWS = 250_000


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


def file_chunks(file_rows: list[tuple[str, int]], chunk_rows: int) -> Iterator[list[str]]:
    """Consecutive files grouped so that a group holds at most `chunk_rows` rows (or one larger file)."""
    chunk, rows = [], 0
    for name, n in file_rows:
        if chunk and rows + n > chunk_rows:
            yield chunk
            chunk, rows = [], 0
        chunk.append(name)
        rows += n
    if chunk:
        yield chunk


def check_contract(con: duckdb.DuckDBPyConnection, feed_name: str, chunk_rows: int = CHUNK_ROWS) -> ContractOutcome:
    prepare(con)
    con.execute(f"CREATE OR REPLACE TEMP VIEW _contract_batch AS SELECT * FROM {checked_table(feed_name)}")
    file_rows = con.execute("SELECT _file, count(*) FROM _contract_batch GROUP BY _file ORDER BY _file").fetchall()
    present = [name for name, *_ in con.execute("SELECT * FROM _contract_batch LIMIT 0").description]
    rows_of = dict(file_rows)
    key = ", ".join(q(c) for c in FEEDS[feed_name].key)

    def frames(needed: set[str]) -> Iterator[pd.DataFrame]:
        columns = ", ".join(q(c) for c in present if c in needed)  # not the columns the suite does not read
        for files in file_chunks(file_rows, chunk_rows):
            # a range of the sorted file names, the chunk's exactly: DuckDB skips the row groups outside it
            # (a list lookup read the whole batch, 49M rows at national, once per chunk). A file over
            # chunk_rows (national files hold ~1M rows: ~1 GB more in GX) goes in parts by a hash of its key,
            # so the rows of one key meet in one part and the key's uniqueness in the file is still checked.
            parts = -(-rows_of[files[0]] // chunk_rows) if len(files) == 1 else 1
            for part in range(parts):
                frame = con.execute(
                    f"SELECT {columns} FROM _contract_batch WHERE _file BETWEEN ? AND ?"
                    + (f" AND hash({key}) % {parts} = {part}" if parts > 1 else "") + " ORDER BY _file, _row",
                    [files[0], files[-1]]).df()
                if len(frame):
                    yield frame

    with beside_frames(con):  # the flagged rows' joins too: so measured, as fast
        flagged: dict[str, list[tuple[str, int]]] = {}
        for part in validate_batches(feed_name, frames):
            for rule, rows in part.items():
                flagged.setdefault(rule, []).extend(rows)
        rows = sorted({row for part in flagged.values() for row in part})
        con.register("_contract_flagged", pa.table({"_file": pa.array([f for f, _ in rows], pa.string()),
                                                    "_row": pa.array([r for _, r in rows], pa.int64())}))
        # anti and semi joins, not EXISTS inside count(*) FILTER: that form hashed the whole history (DuckDB 2.0,
        # ~5 s per 40M rows), where a semi join hashes the flagged rows and skips the history's older row groups
        escaped, reached = con.execute(
            f"""SELECT
                (SELECT count(*) FROM _contract_flagged AS f ANTI JOIN (
                    SELECT file_name, row_number FROM quarantine.rows WHERE feed = ? AND released_at IS NULL) AS r
                    ON r.file_name = f._file AND r.row_number = f._row),
                (SELECT count(*) FROM _contract_flagged AS f SEMI JOIN staging.{feed_name}_history AS h
                    ON h._file = f._file AND h._row = f._row)""",
            [feed_name],
        ).fetchall()[0]
        con.unregister("_contract_flagged")
    con.execute("DROP VIEW _contract_batch")
    return ContractOutcome(
        feed=feed_name,
        rows_checked=sum(n for _, n in file_rows),
        unexpected_per_rule={rule: len(r) for rule, r in sorted(flagged.items()) if r},
        escaped_quarantine=escaped,
        reached_staging=reached,
    )
