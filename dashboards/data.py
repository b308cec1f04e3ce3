"""Read-only queries of the warehouse marts, each one restricted by the caller's `Scope`.

The dashboard opens the DuckDB file read-only for each request and closes it at once, so it never holds
a lock between requests; while the pipeline is writing, DuckDB refuses the open and the page says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from dashboards.scope import Scope
from indicators.compute import exists
from pipelines.warehouse import connect

SQL_DIR = Path(__file__).resolve().parent / "sql"
TIERS = ("red", "orange", "yellow")
TIER_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色"}
# Columns of marts.warnings the grid may filter and sort on: names are checked against this list,
# values are always bound parameters.
GRID_COLUMNS = ("week", "province_code", "county_code", "institution_id", "name", "tier", "score", "rank",
                "reasons_zh", "change")
TEXT_FILTERS = {"contains": ("LIKE", "%{}%"), "notContains": ("NOT LIKE", "%{}%"), "equals": ("=", "{}"),
                "notEqual": ("<>", "{}"), "startsWith": ("LIKE", "{}%"), "endsWith": ("LIKE", "%{}")}
LIKE_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})  # an official typing _ means _
NUMBER_FILTERS = {"equals": "=", "notEqual": "<>", "lessThan": "<", "lessThanOrEqual": "<=",
                  "greaterThan": ">", "greaterThanOrEqual": ">="}


class WarehouseBusy(RuntimeError):
    """The pipeline is writing the warehouse; try again after the run."""


@contextmanager
def reader(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    try:
        con = connect(path, read_only=True)
    except duckdb.IOException as exc:
        raise WarehouseBusy(f"warehouse {path} is being written by the pipeline: {exc}") from exc
    try:
        yield con
    finally:
        con.close()


def read_sql(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def _frame(con: duckdb.DuckDBPyConnection, table: str, sql: str, params: list) -> pd.DataFrame:
    """Run `sql` if `table` (schema.name) exists yet; the marts land one by one during the first run."""
    if not exists(con, *table.split(".")):
        return pd.DataFrame()
    return con.execute(sql, params).df()


def weeks(con: duckdb.DuckDBPyConnection, scope: Scope) -> list[str]:
    where, params = scope.sql()
    df = _frame(con, "marts.warnings", f"select distinct week from marts.warnings where {where} "
                "order by week desc", params)
    return df["week"].tolist() if len(df) else []


def province_overview(con: duckdb.DuckDBPyConnection, scope: Scope, week: str) -> pd.DataFrame:
    """Per province: warning counts by tier and prepaid liability against the supervised balance."""
    where, params = scope.sql()
    if not exists(con, "marts", "warnings") or not exists(con, "marts", "institution_week_indicators"):
        return pd.DataFrame()
    return con.execute(read_sql("province_overview.sql").format(scope=where), [week, *params, week, *params]).df()


def tier_trend(con: duckdb.DuckDBPyConnection, scope: Scope) -> pd.DataFrame:
    where, params = scope.sql()
    return _frame(con, "marts.warnings", f"select week, tier, count(*) as warnings from marts.warnings "
                  f"where {where} group by all order by week, tier", params)


def _grid_where(scope: Scope, week: str | None, filter_model: dict | None) -> tuple[str, list]:
    where, params = scope.sql()
    clauses = [where]
    if week:
        clauses.append("week = ?")
        params.append(week)
    for column, spec in (filter_model or {}).items():
        if column not in GRID_COLUMNS:
            raise ValueError(f"cannot filter on {column!r}")
        if spec.get("filterType") == "number" and spec.get("type") in NUMBER_FILTERS:
            clauses.append(f'"{column}" {NUMBER_FILTERS[spec["type"]]} ?')
            params.append(float(spec["filter"]))
        elif spec.get("type") in TEXT_FILTERS:
            op, pattern = TEXT_FILTERS[spec["type"]]
            value, like = str(spec.get("filter", "")), "LIKE" in op
            clauses.append(f'cast("{column}" as varchar) {op} ?' + (" escape '\\'" if like else ""))
            params.append(pattern.format(value.translate(LIKE_ESCAPES) if like else value))
        else:
            raise ValueError(f"unsupported filter {spec!r}")
    return " and ".join(clauses), params


def _order_by(sort_model: list[dict] | None) -> str:
    terms = []
    for item in sort_model or []:
        if item.get("colId") not in GRID_COLUMNS:
            raise ValueError(f"cannot sort on {item.get('colId')!r}")
        terms.append(f'"{item["colId"]}" {"desc" if item.get("sort") == "desc" else "asc"}')
    return ", ".join([*terms, "province_code", "rank", "institution_id"])


def warnings_page(con: duckdb.DuckDBPyConnection, scope: Scope, week: str | None, start: int, end: int,
                  filter_model: dict | None = None, sort_model: list[dict] | None = None,
                  ) -> tuple[list[dict], int]:
    """One block of the warning list for the grid's infinite row model, and the total row count."""
    if not exists(con, "marts", "warnings"):
        return [], 0
    where, params = _grid_where(scope, week, filter_model)
    total = con.execute(f"select count(*) from marts.warnings where {where}", params).fetchone()[0]
    columns = ", ".join(f'"{c}"' for c in GRID_COLUMNS)
    rows = con.execute(f"select {columns} from marts.warnings where {where} order by {_order_by(sort_model)} "
                       "limit ? offset ?", [*params, max(0, end - start), max(0, start)]).df()
    return rows.to_dict("records"), int(total)


def warnings_csv(con: duckdb.DuckDBPyConnection, scope: Scope, week: str | None,
                 filter_model: dict | None = None) -> str:
    """The filtered list as CSV with a BOM, so that Excel opens the Chinese reasons correctly."""
    rows, _ = warnings_page(con, scope, week, 0, 1_000_000, filter_model)
    return "\ufeff" + pd.DataFrame(rows, columns=list(GRID_COLUMNS)).to_csv(index=False)


def warning_rows(con: duckdb.DuckDBPyConnection, scope: Scope, keys: list[tuple[str, str]]) -> list[dict]:
    """Full warning rows (with the reasons JSON) for `(week, institution_id)` keys, only within scope."""
    where, params = scope.sql()
    found = []
    for week, institution_id in keys:
        df = con.execute(f"select * from marts.warnings where {where} and week = ? and institution_id = ?",
                         [*params, week, institution_id]).df()
        for row in df.to_dict("records"):
            row["reasons"] = json.loads(row["reasons"]) if isinstance(row["reasons"], str) else row["reasons"]
            found.append(row)
    return found


def institution_region(con: duckdb.DuckDBPyConnection, institution_id: str) -> tuple[str, str] | None:
    """Where the institution is filed now (latest filing record), or None if unknown."""
    row = con.execute("select province_code, county_code from staging.institutions where institution_id = ? "
                      "order by record_date desc limit 1", [institution_id]).fetchone()
    return (row[0], row[1]) if row else None


def institution_detail(con: duckdb.DuckDBPyConnection, scope: Scope, institution_id: str) -> dict | None:
    """Everything the institution page shows, or None when the institution is outside the scope."""
    region = institution_region(con, institution_id)
    if region is None or not scope.allows(*region):
        return None
    where, params = scope.sql()
    key = [institution_id, *params]
    return {
        "filing": con.execute("select * from staging.institutions where institution_id = ? and " + where +
                              " order by record_date desc limit 1", key).df(),
        "indicators": _frame(con, "marts.institution_week_indicators",
                             "select * from marts.institution_week_indicators where institution_id = ? and "
                             f"{where} order by week", key),
        "scores": _frame(con, "marts.institution_week_scores",
                         "select week, model_name, model_version, score, contributions "
                         "from marts.institution_week_scores where institution_id = ? order by week",
                         [institution_id]),
        "warnings": _frame(con, "marts.warnings", "select week, tier, score, rank, reasons_zh, reasons, change "
                           f"from marts.warnings where institution_id = ? and {where} order by week", key),
        "activity": con.execute(read_sql("institution_activity.sql"), [institution_id] * 3).df(),
    }


def data_quality(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """Delivery bookkeeping by feed and quarantine by rule: counts only, no institution rows, so every
    role sees the national picture of the feeds it depends on."""
    return {
        "files": _frame(con, "ops.files", "select feed, status, count(*) as files, "
                        "sum(rows_delivered) as rows_delivered, sum(rows_inserted) as rows_inserted, "
                        "sum(rows_corrected) as rows_corrected, sum(rows_unchanged) as rows_redelivered, "
                        "sum(rows_quarantined) as rows_quarantined from ops.files group by all "
                        "order by feed, status", []),
        "rejected": _frame(con, "ops.files", "select file_name, feed, reason from ops.files "
                           "where status = 'rejected' order by file_name", []),
        "quarantine": _frame(con, "quarantine.rows", "select feed, rule, count(*) as rows, "
                             "count(released_at) as released from quarantine.rows group by all "
                             "order by rows desc", []),
        "continuity": _frame(con, "staging.bank_continuity_breaks",
                             "select bank_code, count(*) as breaks, count(distinct account_id) as accounts, "
                             "sum(abs(delta_fen)) as abs_delta_fen, min(week) as first_week, max(week) as last_week "
                             "from staging.bank_continuity_breaks group by all order by breaks desc", []),
    }
