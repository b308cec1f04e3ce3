"""The text summary `tutorwatch run` and `make demo` print after ingestion."""

from __future__ import annotations

import duckdb

from data_contracts.feeds import FEED_NAMES
from data_contracts.rules import RULES_BY_NAME


def summary_text(con: duckdb.DuckDBPyConnection) -> str:
    """Rows per feed, rows held in quarantine per rule, rejected files with reasons."""
    if not con.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = 'ops' "
                       "AND table_name = 'files'").fetchall():
        return "Ingestion: nothing ingested yet."
    lines = ["Ingestion summary", "  rows in staging (current version per key):"]
    for feed in FEED_NAMES:
        n = con.execute(f"SELECT count(*) FROM staging.{feed}").fetchall()[0][0]
        lines.append(f"    {feed:<18} {n:>10,}")
    held = con.execute(
        "SELECT rule, count(*) FROM quarantine.rows WHERE released_at IS NULL GROUP BY rule ORDER BY count(*) DESC, rule"
    ).fetchall()
    lines.append(f"  quarantined rows (per rule): {sum(n for _, n in held):,}")
    lines += [f"    {rule:<48} {n:>8,}  {RULES_BY_NAME[rule].zh if rule in RULES_BY_NAME else ''}" for rule, n in held]
    rejected = con.execute(
        "SELECT file_name, reason FROM ops.files WHERE status = 'rejected' ORDER BY file_name"
    ).fetchall()
    duplicates = con.execute("SELECT count(*) FROM ops.files WHERE status = 'duplicate'").fetchall()[0][0]
    lines.append(f"  files rejected: {len(rejected)}; duplicate files skipped: {duplicates}")
    lines += [f"    {name}: {reason}" for name, reason in rejected]
    unchanged, stale = con.execute(
        "SELECT coalesce(sum(rows_unchanged), 0), count(*) FILTER (WHERE coalesce(rows_inserted, 0) "
        "+ coalesce(rows_corrected, 0) + coalesce(rows_quarantined, 0) = 0) FROM ops.files WHERE status = 'loaded'"
    ).fetchall()[0]
    lines.append(f"  re-delivered rows identical to loaded ones (counted once): {unchanged:,}; "
                 f"files with nothing new: {stale}")
    breaks = con.execute(
        "SELECT count(*), count(DISTINCT (bank_code, account_id)) FROM staging.bank_continuity_breaks"
    ).fetchall()[0]
    lines.append(f"  bank continuity breaks: {breaks[0]:,} in {breaks[1]:,} supervision accounts")
    return "\n".join(lines)

