"""Loading a feed: new files and retried quarantined rows form one batch, checked and merged set-based.

Steps per feed: read each new file (its ledger row is written with the merge) and stack the rows into
`ops.last_batch_<feed>` (text columns, personal data already replaced; whole files in groups of at most
`GROUP_ROWS` rows). Then, group after group in one transaction: type them and add the lookups the rules need
(`ops.last_batch_<feed>_checked`, kept for the contract asset check), evaluate every rule of
`data_contracts.rules` in one SQL pass, route breaking rows to `quarantine.rows`, merge the rest into
staging (`merge.sql`), and write the per-file counts to `ops.files`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from data_contracts.feeds import (
    FEEDS, PII_PHONE_COLUMN, PII_PSEUDONYM_COLUMN, VARCHAR, Feed, staging_columns,
)
from data_contracts.rules import DELIVERY_END_SQL, PHONE_OK_COLUMN, lookups_for, q, raw, rules_for
from pipelines.ingest.reading import Delivery, Rejected, find_deliveries, read_delivery, sha256_of
from pipelines.warehouse import create_staging_tables

SQL_DIR = Path(__file__).parent / "sql"
Progress = Callable[[str], None] | None
GROUP_ROWS = 4_000_000  # new rows checked and merged at a time (a national history's consumptions: 13 groups)


def sql_file(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Schemas, tables and the temporary macros the predicates use."""
    create_staging_tables(con)
    con.execute(sql_file("macros.sql"))


def raw_columns(feed: Feed) -> list[str]:
    """Text columns of a batch: the feed's, with the phone replaced by its pseudonym and format flag."""
    cols = [PII_PSEUDONYM_COLUMN if c == PII_PHONE_COLUMN else c for c in feed.column_names]
    return cols + ([PHONE_OK_COLUMN] if PII_PHONE_COLUMN in feed.column_names else [])


def batch_table(feed: str) -> str:
    return f"ops.last_batch_{feed}"


def checked_table(feed: str) -> str:
    """The batch relation the routing evaluated, kept for the contract check: recomputing it there cost as
    much again (the per-order hours lookup alone ~14 s per million consumptions). Its lookups read staging
    of other feeds or staging without the batch's keys, which the merge does not change."""
    return f"ops.last_batch_{feed}_checked"


def batch_relation_sql(feed: Feed, batch: str) -> str:
    """The relation the rules are evaluated on: raw text `_raw_c`, typed `c`, lineage and lookups (the row's
    JSON for quarantine: `row_json_sql`)."""
    typed = ["_file", "_row", "_delivery_date", "_seq", "_group",
             f"{DELIVERY_END_SQL} AS _delivery_end"]
    for col in feed.columns:
        if col.name == PII_PHONE_COLUMN:
            typed += [q(PII_PSEUDONYM_COLUMN), q(PHONE_OK_COLUMN)]
            continue
        typed.append(f"{q(col.name)} AS {q(raw(col.name))}")
        typed.append(q(col.name) if col.type == VARCHAR else f"try_cast({q(col.name)} AS {col.type}) AS {q(col.name)}")
    lookups = [f"{sql.format(batch=batch)} AS {q(name)}" for name, sql in lookups_for(feed.name).items()]
    return (f"WITH typed AS (SELECT {', '.join(typed)} FROM {batch}) "
            f"SELECT b.*{''.join(', ' + x for x in lookups)} FROM typed AS b")


def row_json_sql(feed: Feed) -> str:
    """A row of the batch relation as quarantine keeps it: the delivered text (personal data already replaced)
    as JSON. Computed where a rule fails, not stored with the relation (it is as large as all the text)."""
    copied = (PII_PSEUDONYM_COLUMN, PHONE_OK_COLUMN)
    pairs = ", ".join(f"{q(c)} := {q(c) if c in copied else q(raw(c))}" for c in raw_columns(feed))
    return f"CAST(to_json(struct_pack({pairs})) AS VARCHAR)"


def _detail_sql(columns: tuple[str, ...]) -> str:
    parts = [f"'{c.removeprefix('_raw_')}=' || coalesce(CAST({q(c)} AS VARCHAR), '∅')" for c in columns]
    return f"concat_ws(', ', {', '.join(parts)})"


def failures_sql(feed: Feed) -> str:
    """One row per (row, broken rule) over `_checked`."""
    return "\nUNION ALL\n".join(
        f"SELECT _file, _row, '{r.name}' AS rule, {_detail_sql(r.form.columns)} AS detail, _row_json "
        f"FROM _checked WHERE {r.violation_sql}"
        for r in rules_for(feed.name)
    )


@dataclass
class FeedResult:
    feed: str
    files_loaded: int = 0
    files_rejected: int = 0
    files_duplicate: int = 0
    rows_inserted: int = 0
    rows_corrected: int = 0
    rows_unchanged: int = 0
    rows_released: int = 0
    quarantined_per_rule: dict[str, int] = field(default_factory=dict)
    rejections: dict[str, str] = field(default_factory=dict)

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined_per_rule.values())

    def metadata(self) -> dict:
        return {
            "files_loaded": self.files_loaded, "files_rejected": self.files_rejected,
            "files_duplicate": self.files_duplicate, "rows_inserted": self.rows_inserted,
            "rows_corrected": self.rows_corrected, "rows_unchanged": self.rows_unchanged,
            "rows_released": self.rows_released, "quarantined_per_rule": dict(self.quarantined_per_rule),
            "rejected_files": dict(self.rejections),
        }


@dataclass
class _Ledger:
    """The ledger rows (`ops.files`) and file stats (`ops.file_stats`) of the files a run read, written in the
    merge's transaction: a run killed before its merge leaves no file marked as processed, so the rerun reads
    them all again."""

    files: list[list] = field(default_factory=list)
    stats: list[list] = field(default_factory=list)

    def add(self, delivery: Delivery, sha: str | None, status: str, reason: str | None = None,
            rows: int | None = None, amount: int | None = None) -> None:
        self.files.append([delivery.name, delivery.feed, sha, delivery.delivery_date, status, reason, rows, amount])

    def loaded(self, sha: str) -> bool:
        """Whether this run already read a file with this content."""
        return any(row[2] == sha and row[4] == "loaded" for row in self.files)

    def write(self, con) -> None:
        if self.stats:
            con.executemany("INSERT INTO ops.file_stats VALUES (?, ?, ?)", self.stats)
        if self.files:
            con.executemany(
                "INSERT INTO ops.files (file_name, feed, sha256, delivery_date, status, reason, rows_delivered, "
                "amount_fen_delivered, loaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())", self.files)


def _read_new_files(con, feed: Feed, landing: Path, pii_key: bytes, result: FeedResult, ledger: _Ledger,
                    progress: Progress) -> Iterator[pa.Table]:
    """The table of each file not yet seen, one at a time; rejected and duplicate files go to the ledger only.

    A file whose name, size and modification time match one processed before is not even read: a weekly
    run would otherwise read and hash the whole delivery history (`ops.file_stats`)."""
    con.execute("CREATE TABLE IF NOT EXISTS ops.file_stats (file_name VARCHAR, size BIGINT, mtime_ns BIGINT)")
    known = set(con.execute("SELECT file_name, size, mtime_ns FROM ops.file_stats").fetchall())
    for delivery in find_deliveries(landing, feed.name):
        stat = delivery.path.stat()
        if (delivery.name, stat.st_size, stat.st_mtime_ns) in known:
            continue
        ledger.stats.append([delivery.name, stat.st_size, stat.st_mtime_ns])
        data = delivery.path.read_bytes()
        sha = sha256_of(data)
        seen = con.execute("SELECT status FROM ops.files WHERE file_name = ? AND sha256 = ?",
                           [delivery.name, sha]).fetchall()
        if seen:
            continue  # this very file was processed by an earlier run
        if ledger.loaded(sha) or con.execute("SELECT 1 FROM ops.files WHERE sha256 = ? AND status = 'loaded'",
                                             [sha]).fetchall():
            ledger.add(delivery, sha, "duplicate", "same content already loaded under another name")
            result.files_duplicate += 1
            _say(progress, f"{feed.name}: {delivery.name} duplicate of a loaded file, skipped")
            continue
        try:
            if delivery.misnamed:
                raise Rejected(delivery.misnamed)
            read = read_delivery(delivery, feed, pii_key, data)
        except Rejected as exc:
            ledger.add(delivery, sha, "rejected", str(exc))
            result.files_rejected += 1
            result.rejections[delivery.name] = str(exc)
            _say(progress, f"{feed.name}: {delivery.name} REJECTED: {exc}")
            continue
        ledger.add(delivery, sha, "loaded", None, read.rows, read.amount_total)
        result.files_loaded += 1
        _say(progress, f"{feed.name}: {delivery.name} read, {read.rows} rows")
        n = read.rows
        lineage = {
            "_file": pa.array([delivery.name] * n, pa.string()),
            "_row": pa.array(range(1, n + 1), pa.int64()),
            "_delivery_date": pa.array([delivery.delivery_date] * n, pa.date32()),
            "_seq": pa.array([delivery.seq] * n, pa.int32()),
        }
        yield pa.table({**lineage, **{c: read.table[c] for c in raw_columns(feed)}})


def _say(progress: Progress, message: str) -> None:
    if progress:
        progress(message)


def _start_batch(con, feed: Feed) -> None:
    """`ops.last_batch_<feed>`: the quarantined rows waiting only on references (group 0); the new files' rows
    follow."""
    text_cols = ", ".join(
        f"CAST(json_extract(row_json, '$.{c}') AS BOOLEAN) AS {q(c)}" if c == PHONE_OK_COLUMN
        else f"json_extract_string(row_json, '$.{c}') AS {q(c)}" for c in raw_columns(feed)
    )
    referential = [r.name for r in rules_for(feed.name) if r.referential]
    con.execute(
        f"""CREATE OR REPLACE TABLE {batch_table(feed.name)} AS
        WITH waiting AS (
            SELECT file_name, row_number, any_value(row_json) AS row_json
            FROM quarantine.rows WHERE feed = ? AND released_at IS NULL
            GROUP BY file_name, row_number
            HAVING bool_and(list_contains(?, rule))
        )
        SELECT file_name AS _file, row_number AS _row, tw_delivery_date(file_name) AS _delivery_date,
               tw_seq(file_name) AS _seq, 0 AS _group, {text_cols}
        FROM waiting""",
        [feed.name, referential],
    )


def _fill_batch(con, feed: Feed, tables: Iterator[pa.Table]) -> int:
    """Append each file's rows to the batch, whole files in groups of at most `GROUP_ROWS` rows (a larger file
    alone), numbered from 0; returns the number of groups."""
    group, rows = 0, 0
    for table in tables:
        if rows and rows + table.num_rows > GROUP_ROWS:
            group, rows = group + 1, 0
        rows += table.num_rows
        _append_to_batch(con, feed, table, group)  # one file in memory at a time; DuckDB spills the batch
    return group + 1


def _append_to_batch(con, feed: Feed, table: pa.Table, group: int) -> None:
    con.register("_incoming", table)
    con.execute(f"INSERT INTO {batch_table(feed.name)} BY NAME SELECT *, {int(group)} AS _group FROM _incoming")
    con.unregister("_incoming")


def _pairs(a: str, b: str, cols) -> str:
    return " AND ".join(f"{a}.{q(c)} = {b}.{q(c)}" for c in cols)


def merge_sql(feed: Feed) -> str:
    content = [c.name for c in staging_columns(feed) if not c.name.startswith("_") and c.name not in feed.key]
    columns = [c.name for c in staging_columns(feed)]
    return sql_file("merge.sql").format(
        feed=feed.name,
        columns=", ".join(map(q, columns)),
        key_cols=", ".join(map(q, feed.key)),
        key_cols_h=", ".join(f"h.{q(c)}" for c in feed.key),
        content_cols=", ".join(map(q, content)),
        key_match_h=_pairs("h", "clean", feed.key),
        content_match_h=" AND ".join(f"h.{q(c)} IS NOT DISTINCT FROM clean.{q(c)}" for c in content) or "true",
        key_match_s=_pairs("s", "clean", feed.key),
        key_match_ht=_pairs("h", "t", feed.key),
        key_match_vt=_pairs("v", "t", feed.key),
        key_match_hw=_pairs("h", "w", feed.key),
        key_match_sw=_pairs("s", "w", feed.key),
    )


def _file_counts(con, feed: Feed) -> None:
    """Per-file counts of this batch into the ledger rows written when the files were read."""
    # only integer text counts as money (the typed cast would round 12.5)
    amount = (f"CASE WHEN regexp_full_match(b.{q(raw(feed.amount_column))}, '-?[0-9]+') "
              f"THEN b.{q(feed.amount_column)} END" if feed.amount_column else "NULL")
    con.execute(
        f"""UPDATE ops.files AS f SET
            rows_inserted = c.inserted, rows_corrected = c.corrected, rows_unchanged = c.unchanged,
            rows_quarantined = c.quarantined, amount_fen_loaded = c.amount_loaded,
            amount_fen_quarantined = c.amount_quarantined
        FROM (
            SELECT b._file,
                count(*) FILTER (WHERE v._is_insert) AS inserted,
                count(*) FILTER (WHERE v._is_new AND NOT v._is_insert) AS corrected,
                count(*) FILTER (WHERE v._row IS NOT NULL AND NOT v._is_new) AS unchanged,
                count(*) FILTER (WHERE v._row IS NULL) AS quarantined,
                sum({amount}) FILTER (WHERE v._row IS NOT NULL) AS amount_loaded,
                sum({amount}) FILTER (WHERE v._row IS NULL) AS amount_quarantined
            FROM _checked AS b LEFT JOIN _versions AS v ON v._file = b._file AND v._row = b._row
            GROUP BY b._file
        ) AS c
        WHERE f.file_name = c._file AND f.feed = ? AND f.status = 'loaded' AND f.rows_inserted IS NULL""",
        [feed.name],
    )


def ingest_feed(con: duckdb.DuckDBPyConnection, landing: Path, feed_name: str, pii_key: bytes,
                progress: Progress = None) -> FeedResult:
    """Load the feed's new files (and retry referential quarantine) into staging; see the module doc."""
    if not pii_key:
        raise ValueError("a PII key is required")
    feed = FEEDS[feed_name]
    result = FeedResult(feed_name)
    prepare(con)
    # The batch is this run's scratch and is filled outside the transaction: inside one, DuckDB kept every
    # appended file's Arrow buffers alive until the commit (national consumptions: 8 GB beyond its pool).
    ledger = _Ledger()
    _start_batch(con, feed)
    groups = _fill_batch(con, feed, _read_new_files(con, feed, Path(landing), pii_key, result, ledger, progress))
    con.execute("BEGIN TRANSACTION")
    try:
        ledger.write(con)
        for group in range(groups):
            if groups > 1:
                _say(progress, f"{feed.name}: checking and merging group {group + 1} of {groups}")
            _check_and_merge(con, feed, result, group)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return result


def _check_and_merge(con, feed: Feed, result: FeedResult, group: int) -> None:
    """Route and merge one group of the batch; the checked table collects every group for the contract check.

    Groups are merged in delivery order, each against staging as the earlier groups left it, the way weekly
    runs follow each other: a national history is never checked, joined or sorted in one piece."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW _group_batch AS "
                f"SELECT * FROM {batch_table(feed.name)} WHERE _group = {int(group)}")
    relation = batch_relation_sql(feed, "_group_batch")
    if group == 0:
        con.execute(f"CREATE OR REPLACE TABLE {checked_table(feed.name)} AS {relation}")
    else:
        con.execute(f"INSERT INTO {checked_table(feed.name)} {relation}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW _checked AS SELECT *, {row_json_sql(feed)} AS _row_json "
                f"FROM {checked_table(feed.name)} WHERE _group = {int(group)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _failures AS {failures_sql(feed)}")
    con.execute(
        """INSERT INTO quarantine.rows
        SELECT ?, f._file, f._row, f.rule, f.detail, f._row_json, now(), NULL FROM _failures AS f
        WHERE NOT EXISTS (SELECT 1 FROM quarantine.rows AS r WHERE r.feed = ? AND r.file_name = f._file
                          AND r.row_number = f._row AND r.rule = f.rule AND r.released_at IS NULL)""",
        [feed.name, feed.name],
    )
    released = con.execute(
        """UPDATE quarantine.rows AS r SET released_at = now()
        WHERE r.feed = ? AND r.released_at IS NULL
          AND EXISTS (SELECT 1 FROM _checked AS b WHERE b._file = r.file_name AND b._row = r.row_number)
          AND NOT EXISTS (SELECT 1 FROM _failures AS f WHERE f._file = r.file_name AND f._row = r.row_number
                          AND f.rule = r.rule)""",
        [feed.name],
    ).fetchall()[0][0]
    result.rows_released += int(released)
    staging_cols = ", ".join(q(c.name) for c in staging_columns(feed) if c.name != "_loaded_at")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _clean AS
        SELECT {staging_cols}, now() AS _loaded_at, _seq FROM _checked AS b
        WHERE NOT EXISTS (SELECT 1 FROM _failures AS f WHERE f._file = b._file AND f._row = b._row)"""
    )
    con.execute(merge_sql(feed))
    counts = con.execute(
        "SELECT count(*) FILTER (WHERE _is_insert), count(*) FILTER (WHERE _is_new AND NOT _is_insert), "
        "count(*) FILTER (WHERE NOT _is_new) FROM _versions"
    ).fetchall()[0]
    result.rows_inserted += int(counts[0])
    result.rows_corrected += int(counts[1])
    result.rows_unchanged += int(counts[2])
    failures = dict(con.execute("SELECT rule, count(*) FROM _failures GROUP BY rule").fetchall())
    earlier = result.quarantined_per_rule
    result.quarantined_per_rule = {rule: earlier.get(rule, 0) + failures.get(rule, 0)
                                   for rule in sorted({*earlier, *failures})}
    _file_counts(con, feed)
