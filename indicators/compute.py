"""Compute `marts.institution_week_indicators` from the staging tables, set-based in DuckDB.

The SQL lives beside this file in `sql/`: four numbered steps (`_calendar`, `_sources`, `_state`,
`_weekly`) build temporary tables over a dense grid of institutions x ISO weeks, then one SELECT per
indicator (`sql/<name>.sql`, returning the grid key `k` and the value) becomes a temporary table of the
same name, and the mart joins them all on `k`. Windows over the dense grid make "the 4 weeks ending at
week end" a row frame, so the whole history is computed at once with no Python loop over institutions
or weeks.

Indicators are per institution (every window partitions by institution), so the institutions are cut into
chunks by a hash of their id, each holding about `CHUNK_FEED_ROWS` consumptions and bank movements, and
computed one chunk after the other into a temporary table; the mart takes them in one statement. A national
history in one piece spilled more than 60 GB to disk.

Recomputing only some weeks (late rows, a new week) does not rebuild the grid over the whole history: the
grid starts `LOOKBACK_WEEKS` before the first recomputed week, and the earlier rows are folded into one
carry row per institution (sums only), so running totals stay exact while the cost follows the weeks
recomputed. The refresh goes further (`stored_sums=True`): the look-back weeks' sums are read from SUMS, stored
by the computation that wrote them, so only the recomputed weeks' rows are summed, and the last balance of
an account before them is read from BALANCES instead of its earlier movements. Recomputing only some
institutions (`institutions=`) filters every source on them.
`refresh_institution_week_indicators` finds, per institution, the first week that what ingestion loaded
since the mart's last computation (`_computed_at`) touches: a new week is computed for every institution, a
late row recomputes the earlier weeks of its own institution only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb

from data_contracts.feeds import FEEDS, ORDER_CAP_CLASS_HOURS, ORDER_CAP_MONTHS, staging_columns
from indicators.registry import INDICATORS, NAMES, SQL_DIR

MART = "marts.institution_week_indicators"
# Every grid row's weekly sums (ind_weekly without its grid keys), kept so that a refresh reads the look-back
# weeks from here instead of re-reading their feed rows.
SUMS = "marts.institution_week_sums"
# Each account's balance after its last movement of every written week with one: a refresh carries the balance
# of the accounts it recomputes from here instead of from every earlier movement.
BALANCES = "marts.account_week_balances"
SELECTED_WEEK_STARTS = "SELECT week_start FROM ind_calendar WHERE week IN (SELECT week FROM ind_selected_weeks)"
SUMS_SELECT = (
    "SELECT * EXCLUDE (k, institution_no, first_filed, reserve_required_fen) FROM ind_weekly WHERE ind_written(k)"
)
BALANCES_SELECT = f"SELECT * FROM ind_account_weeks WHERE week_start IN ({SELECTED_WEEK_STARTS})"
STEPS = ("_sources", "_state", "_weekly")  # after `_calendar`, which fixes where the grid starts
LOOKBACK_WEEKS = 16  # the longest trailing window (rating_drop: the 16 weeks ending at week end)
CHUNK_FEED_ROWS = 10_000_000  # consumptions + bank movements per chunk of institutions (a province's history)
TEMP_TABLES = (
    "ind_orders", "ind_consumptions", "ind_carried_orders", "ind_consumption_carry", "ind_refunds", "ind_movements",
    "ind_movement_carry", "ind_complaints", "ind_evaluations", "ind_filings", "ind_institutions",
    "ind_state", "ind_account_weeks", "ind_weekly", "ind_selected_weeks", "ind_selected_institutions",
    "ind_mart_rows", "ind_sums_rows", "ind_balance_rows", "ind_unchanged",
)
TEMP_VIEWS = ("ind_all_orders", "ind_all_consumptions", "ind_all_movements")
IDENTITY_COLUMNS = (
    "institution_id", "week", "week_start", "week_end", "province_code", "county_code", "name", "category", "mode",
)
# Per staging table, the times that place a row in a week: a loaded or superseded row changes its
# earliest week and, through running totals and trailing windows, every later one.
EVENT_TIMES = {
    "institutions": ("record_date",),
    "orders": ("paid_at",),
    "consumptions": ("consumed_at",),
    "refunds": ("requested_at", "decided_at", "paid_at"),
    "account_movements": ("booked_at",),
    "complaints": ("received_at", "responded_at", "resolved_at"),
    "evaluations": ("rated_at",),
}


@dataclass(frozen=True)
class Refresh:
    """What one refresh did: `weeks` recomputed for some institutions (all weeks and institutions when `full`),
    `institutions` recomputed, `rows` written."""

    rows: int
    weeks: list[str]
    full: bool
    institutions: int = 0


def _sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def _create_macros(con: duckdb.DuckDBPyConnection, as_of_delivery: bool) -> None:
    """Parameters the SQL reads: when a row is known, and the regulatory cap on one order."""
    known = (
        "greatest(ts, coalesce(delivered::TIMESTAMPTZ, ts))" if as_of_delivery else "ts"
    )
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_known_at(ts, delivered) AS {known}")
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_as_of_delivery() AS {'true' if as_of_delivery else 'false'}")
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_order_cap_hours() AS {int(ORDER_CAP_CLASS_HOURS)}")
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_order_cap_months() AS {int(ORDER_CAP_MONTHS)}")


def _select_weeks(con: duckdb.DuckDBPyConnection, weeks: list[str] | None, from_week: str | None) -> None:
    if weeks is None:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ind_selected_weeks AS SELECT week FROM ind_calendar WHERE week >= ?",
            [from_week or ""],
        )
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE ind_selected_weeks AS SELECT unnest(?::VARCHAR[]) AS week", [weeks])
    # `ind_written(k)`: whether grid key k is of a selected week; constants, so every scan filters before a join
    numbers, n_weeks = con.execute(
        "SELECT list(week_no ORDER BY week_no), max(n_weeks) FROM ind_calendar "
        "WHERE week IN (SELECT week FROM ind_selected_weeks)").fetchone()
    test = f"(k - 1) % {int(n_weeks)} + 1 IN ({', '.join(str(int(n)) for n in numbers)})" if numbers else "false"
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_written(k) AS {test}")


def _create_grid_macros(con: duckdb.DuckDBPyConnection, stored_sums: bool) -> None:
    """`ind_window_start()`: Monday of the windows' grid (ind_state), LOOKBACK_WEEKS before the first selected
    week (the first calendar week at most); `ind_rows_start()`: the first week summed from the feeds' rows, the
    same week, or with `stored_sums` the first selected week (the earlier weeks' sums are read from SUMS);
    `ind_carry_week()`: the week before it, which holds the carry rows; `ind_rows_since()`: its first instant
    (Monday 00:00 in the session's time zone, as date_trunc); `ind_stored_sums()`: whether the weeks before
    ind_rows_start() are read from SUMS (then no carry row is summed from the feeds, and the per-order and
    per-account carry is kept only for the orders and accounts with rows from ind_rows_start() on)."""
    window, first = con.execute(
        """
        WITH first AS (SELECT min(week_no) AS week_no FROM ind_calendar WHERE week IN (SELECT week FROM ind_selected_weeks))
        SELECT
            coalesce((SELECT week_start FROM ind_calendar, first WHERE ind_calendar.week_no = greatest(1, first.week_no - ?)),
                     (SELECT max(week_start) FROM ind_calendar), DATE '1900-01-01'),
            (SELECT week_start FROM ind_calendar, first WHERE ind_calendar.week_no = first.week_no)
        """,
        [LOOKBACK_WEEKS],
    ).fetchone()
    rows = first if stored_sums and first is not None else window
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_stored_sums() AS {'true' if stored_sums else 'false'}")
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_window_start() AS DATE '{window.isoformat()}'")
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_rows_start() AS DATE '{rows.isoformat()}'")
    con.execute("CREATE OR REPLACE TEMP MACRO ind_carry_week() AS (ind_rows_start() - 7)")
    con.execute("CREATE OR REPLACE TEMP MACRO ind_rows_since() AS ind_rows_start()::TIMESTAMPTZ")


def _select_institutions(con: duckdb.DuckDBPyConnection, institutions: list[str] | None) -> None:
    """`ind_selected(institution_id)`: whether an institution is recomputed (all of them, or `institutions`)."""
    test = "true"
    if institutions is not None:
        con.execute("CREATE OR REPLACE TEMP TABLE ind_selected_institutions AS "
                    "SELECT DISTINCT unnest(?::VARCHAR[]) AS selected_id", [institutions])
        test = "id IN (SELECT selected_id FROM ind_selected_institutions)"
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_selected(id) AS {test}")


def institution_chunks(con: duckdb.DuckDBPyConnection) -> int:
    """How many chunks of institutions to compute one after the other (one for all but the largest data): the
    consumptions and bank movements of the selected institutions summed week by week (by event time, from
    ind_rows_start()); the rows before are only summed into carry rows."""
    rows = con.execute("""SELECT
        (SELECT count(*) FROM staging.consumptions WHERE consumed_at >= ind_rows_since() AND ind_selected(institution_id))
        + (SELECT count(*) FROM staging.account_movements WHERE booked_at >= ind_rows_since() AND ind_selected(institution_id))
    """).fetchone()[0]
    return max(1, math.ceil(rows / CHUNK_FEED_ROWS))


def _select_chunk(con: duckdb.DuckDBPyConnection, chunk: int, chunks: int) -> None:
    """`ind_in_chunk(institution_id)`: whether a selected institution belongs to this chunk (the sources filter on it)."""
    test = "ind_selected(institution_id)" + ("" if chunks == 1 else f" AND hash(institution_id) % {int(chunks)} = {int(chunk)}")
    con.execute(f"CREATE OR REPLACE TEMP MACRO ind_in_chunk(institution_id) AS {test}")


def _create_indicator_tables(con: duckdb.DuckDBPyConnection) -> None:
    """One narrow temporary table (k, value) per indicator, named after it, in registry order (so
    coverage_ratio can read prepaid_liability_fen); narrow tables keep memory low at national scale."""
    for i in INDICATORS:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {i.name} AS {_sql(i.name)}")


def mart_select() -> str:
    """The SELECT of the mart's rows of this chunk: active grid rows of the selected weeks, one column per
    indicator (the mart adds when they were computed: what the scores and the next refresh compare against)."""
    identity = ", ".join(f"s.{c}" for c in IDENTITY_COLUMNS)
    values = ",\n    ".join(f"{i.name}.{i.name}::DOUBLE AS {i.name}" for i in INDICATORS)
    # every table filtered on the written weeks before the joins (a weekly refresh writes 1 of the grid's 17)
    joins = "\n".join(f"LEFT JOIN (FROM {i.name} WHERE ind_written(k)) AS {i.name} USING (k)" for i in INDICATORS)
    return f"SELECT {identity},\n    {values}\nFROM ind_state AS s\n{joins}\nWHERE s.is_active AND ind_written(s.k)"


def compute_institution_week_indicators(
    con: duckdb.DuckDBPyConnection, weeks: list[str] | None = None, as_of_delivery: bool = False,
    from_week: str | None = None, institutions: list[str] | None = None, stored_sums: bool = False,
    calendar_held: bool = False,
) -> int:
    """Write the mart for every week in the data, or replace only `weeks` / the weeks from `from_week` on
    (late rows recompute past weeks; the grid then starts LOOKBACK_WEEKS before them), of every institution
    or of `institutions` only (the others keep their rows).

    `stored_sums=True` reads the weekly sums of the look-back weeks from SUMS instead of the feeds' rows: only
    right when those weeks are unchanged since they were stored, as the refresh guarantees by recomputing
    each institution from its earliest touched week. Every computation stores the sums of the weeks it writes.

    `as_of_delivery=True` counts each row only from its delivery date on (the view known at the time, for
    leakage tests); the default counts rows in the week they happened. `calendar_held`: the caller holds the
    calendar of these staging tables (`held_calendar`). Returns the number of rows written.
    """
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute(f"CREATE TABLE IF NOT EXISTS {BALANCES} AS SELECT institution_id, bank_code, account_id, "
                "NULL::DATE AS week_start, balance_after_fen FROM staging.account_movements LIMIT 0")
    _create_macros(con, as_of_delivery)
    full = weeks is None and from_week is None and institutions is None
    try:
        if not calendar_held:
            con.execute(_sql("_calendar"))
        _select_weeks(con, weeks, from_week)
        _select_institutions(con, institutions)
        _create_grid_macros(con, stored_sums)
        chunks = institution_chunks(con)
        for chunk in range(chunks):
            _select_chunk(con, chunk, chunks)
            for step in STEPS + (("_stored_weekly",) if stored_sums else ()):
                con.execute(_sql(step))
            _create_indicator_tables(con)
            for table, select in (("ind_mart_rows", mart_select()), ("ind_sums_rows", SUMS_SELECT),
                                  ("ind_balance_rows", BALANCES_SELECT)):
                into = f"CREATE OR REPLACE TEMP TABLE {table} AS" if chunk == 0 else f"INSERT INTO {table}"
                con.execute(f"{into} {select}")
        _write(con, full)
        return con.execute("SELECT count(*) FROM ind_mart_rows").fetchone()[0]
    finally:
        for table in TEMP_TABLES + NAMES + (() if calendar_held else ("ind_calendar",)):
            con.execute(f"DROP TABLE IF EXISTS temp.{table}")
        for view in TEMP_VIEWS:
            con.execute(f"DROP VIEW IF EXISTS temp.{view}")


@contextmanager
def held_calendar(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The calendar (`_calendar`: every feed's first and last time, 1.5 s at national) computed once for the
    computations inside, which pass `calendar_held=True`: a refresh's two passes read the same staging tables, by
    event time (`as_of_delivery=False`, as this calendar)."""
    _create_macros(con, as_of_delivery=False)
    con.execute(_sql("_calendar"))
    try:
        yield
    finally:
        con.execute("DROP TABLE IF EXISTS temp.ind_calendar")


def _write(con: duckdb.DuckDBPyConnection, full: bool) -> None:
    """Replace the mart, SUMS and BALANCES (full), or their rows of the selected weeks and institutions, in one
    transaction: readers never see replaced weeks half-written, and what a refresh reads always matches the mart.

    Every written mart row gets `_computed_at = now()`; `_changed_at` moves only where a value did (a late row
    recomputes its institution from its week on, mostly to the same values): what scores and warnings follow."""
    con.begin()
    try:
        if not full and exists(con, "marts", "institution_week_indicators", "_computed_at"):
            con.execute(f"CREATE OR REPLACE TEMP TABLE ind_unchanged AS {_unchanged_sql(con)}")
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE ind_unchanged "
                        "(institution_id VARCHAR, week VARCHAR, _changed_at TIMESTAMPTZ)")
        mart_rows = ("SELECT r.*, now() AS _computed_at, coalesce(u._changed_at, now()) AS _changed_at "
                     "FROM ind_mart_rows AS r LEFT JOIN ind_unchanged AS u USING (institution_id, week)")
        for table, rows, week, selected in (
            (MART, mart_rows, "week", "SELECT week FROM ind_selected_weeks"),
            (SUMS, "SELECT * FROM ind_sums_rows", "week_start", SELECTED_WEEK_STARTS),
            (BALANCES, "SELECT * FROM ind_balance_rows", "week_start", SELECTED_WEEK_STARTS),
        ):
            if full:
                con.execute(f"CREATE OR REPLACE TABLE {table} AS {rows}")
                continue
            con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS {rows} LIMIT 0")
            if table == MART:
                con.execute(f"ALTER TABLE {MART} ADD COLUMN IF NOT EXISTS _computed_at TIMESTAMPTZ")
                con.execute(f"ALTER TABLE {MART} ADD COLUMN IF NOT EXISTS _changed_at TIMESTAMPTZ")
            con.execute(f"DELETE FROM {table} WHERE {week} IN ({selected}) AND ind_selected(institution_id)")
            con.execute(f"INSERT INTO {table} BY NAME {rows}")
        con.commit()
    except Exception:
        con.rollback()
        raise


def _unchanged_sql(con: duckdb.DuckDBPyConnection) -> str:
    """The mart rows about to be replaced whose every column equals the new row's, with when they last changed."""
    columns = [c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE ind_mart_rows)").fetchall()]
    same = " AND ".join(f"m.{c} IS NOT DISTINCT FROM r.{c}" for c in columns)
    return (f"SELECT m.institution_id, m.week, {changed_at(con, 'm.')} AS _changed_at "
            f"FROM {MART} AS m INNER JOIN ind_mart_rows AS r ON m.institution_id = r.institution_id "
            f"AND m.week = r.week WHERE m.week IN (SELECT week FROM ind_selected_weeks) "
            f"AND ind_selected(m.institution_id) AND {same}")


def changed_at(con: duckdb.DuckDBPyConnection, prefix: str = "") -> str:
    """SQL for when a mart row's values last changed: `_changed_at`, on a mart from before it `_computed_at`, on
    one from before both NULL (readers then take every week as changed)."""
    if exists(con, "marts", "institution_week_indicators", "_changed_at"):
        return f"coalesce({prefix}_changed_at, {prefix}_computed_at)"
    if exists(con, "marts", "institution_week_indicators", "_computed_at"):
        return f"{prefix}_computed_at"
    return "NULL::TIMESTAMPTZ"


def exists(con: duckdb.DuckDBPyConnection, schema: str, table: str, column: str | None = None) -> bool:
    """Whether the table (and its column) exists: another asset may not have written it yet, or an older version
    of it. Fetched to the end: DuckDB refuses to `register` a frame on a connection with an unfinished result."""
    return con.execute(
        f"SELECT count(*) FROM information_schema.{'columns' if column else 'tables'} "
        "WHERE table_schema = ? AND table_name = ?" + (" AND column_name = ?" if column else ""),
        [schema, table, *([column] if column else [])],
    ).fetchall() != [(0,)]


def last_computed_at(con: duckdb.DuckDBPyConnection):
    """When the mart was last written, or None (no mart, no rows, or a mart from before `_computed_at`, SUMS (or
    its `low_ratings`, which the model's feed features read) or BALANCES: a refresh recomputes such a mart whole)."""
    if not (exists(con, "marts", "institution_week_indicators", "_computed_at")
            and exists(con, "marts", "institution_week_sums", "low_ratings")
            and exists(con, "marts", "account_week_balances", "week_start")):
        return None
    return con.execute(f"SELECT max(_computed_at) FROM {MART}").fetchone()[0]


def _touched_sql(feed: str) -> str:
    """The earliest time a change of `feed` since $since can move: a new key, all its times; a corrected row
    (an old version superseded since), the times that changed, or all of them when another column changed
    (an amount or category can count in any of the row's weeks; a status change alone is read through the
    times that came with it, e.g. a refund's paid_at, a complaint's resolved_at)."""
    times = EVENT_TIMES[feed]
    keys = FEEDS[feed].key
    others = [c.name for c in staging_columns(FEEDS[feed])
              if c.name not in (*times, *keys, "status") and not c.name.startswith("_")]

    def every(*sides: str) -> str:
        return f"least({', '.join(f'{side}.{t}::TIMESTAMPTZ' for side in sides for t in times)})"

    changed = " OR ".join(f"o.{c} IS DISTINCT FROM n.{c}" for c in others) or "false"
    changed_times = ", ".join(
        f"CASE WHEN o.{t} IS DISTINCT FROM n.{t} THEN least(o.{t}::TIMESTAMPTZ, n.{t}::TIMESTAMPTZ) END"
        for t in times)
    any_time = " OR ".join(f"o.{t} IS DISTINCT FROM n.{t}" for t in times)
    return _sql("_touched").format(
        feed=feed, keys=", ".join(keys), every_new=every("n"), every_both=every("o", "n"), changed=changed,
        changed_times=f"least({changed_times})", any_time=any_time)


def touched_weeks(con: duckdb.DuckDBPyConnection, since) -> dict[str, str]:
    """Per institution, the earliest ISO week that rows loaded into staging after `since`, or versions
    superseded after it, can change (a correction can move a row to another week); empty when nothing changed."""
    parts = [f"SELECT institution_id, t FROM (\n{_touched_sql(feed)}\n)" for feed in EVENT_TIMES]
    return dict(con.execute(
        f"SELECT institution_id, strftime(date_trunc('week', min(t)), '%G-W%V') "
        f"FROM ({' UNION ALL '.join(parts)}) WHERE t IS NOT NULL AND institution_id IS NOT NULL "
        f"GROUP BY institution_id", {"since": since}
    ).fetchall())


def refresh_institution_week_indicators(con: duckdb.DuckDBPyConnection) -> Refresh:
    """Recompute what changed since the mart's last computation (everything on the first run, nothing when no
    row was loaded or superseded since), in at most two passes, each summing the feeds' rows from its first
    recomputed week only (the look-back weeks' sums are read from SUMS, unchanged since they were stored):

    - a week the mart does not hold yet (the new week, or one before its first) is computed, with every
      later week, for every institution: one that delivered nothing still gets its row (its silence grows);
    - an institution touched before that (late rows, corrections) is recomputed from its earliest touched week,
      in one pass for all of them from the earliest; the other institutions keep their earlier rows.
    """
    since = last_computed_at(con)
    if since is None:
        rows = compute_institution_week_indicators(con)
        return Refresh(rows, _weeks_from(con, ""), full=True, institutions=_institutions(con))
    touched = touched_weeks(con, since)
    if not touched:
        return Refresh(0, [], full=False)
    first_held, last_held = con.execute(f"SELECT min(week), max(week) FROM {MART}").fetchone()
    new = [w for w in touched.values() if not first_held <= w <= last_held]
    every_from = min(new, default=None)
    late = sorted(i for i, w in touched.items() if every_from is None or w < every_from)
    rows, first = 0, every_from
    with held_calendar(con):
        if late:  # up to the week every institution is computed from
            first = min(touched[i] for i in late)
            if every_from is None:
                rows += compute_institution_week_indicators(con, from_week=first, institutions=late, stored_sums=True,
                                                            calendar_held=True)
            elif weeks := [w for w in _weeks_from(con, first) if w < every_from]:
                rows += compute_institution_week_indicators(con, weeks=weeks, institutions=late, stored_sums=True,
                                                            calendar_held=True)
        if every_from is not None:
            rows += compute_institution_week_indicators(con, from_week=every_from, stored_sums=True, calendar_held=True)
    recomputed = _institutions(con) if every_from is not None else len(late)
    return Refresh(rows, _weeks_from(con, first), full=False, institutions=recomputed)


def _institutions(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(f"SELECT count(DISTINCT institution_id) FROM {MART}").fetchone()[0]


def _weeks_from(con: duckdb.DuckDBPyConnection, first: str) -> list[str]:
    return [w for (w,) in con.execute(
        f"SELECT DISTINCT week FROM {MART} WHERE week >= ? ORDER BY week", [first]).fetchall()]
