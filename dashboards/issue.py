"""Issuing a rectification notice: from scoped warning rows to a numbered case with its PDF."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import sqlalchemy as sa

from dashboards import cases, data, notices
from dashboards.data import TIERS
from dashboards.scope import Scope


def indicator_labels() -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, ...]]]:
    """Chinese labels/units and legal basis per indicator, from the registry when it is installed."""
    try:
        from indicators.registry import INDICATORS
    except ImportError:
        return {}, {}
    return ({i.name: (i.name_zh, i.unit) for i in INDICATORS},
            {i.name: tuple(i.legal_basis) for i in INDICATORS})


def findings(reasons: list[dict]) -> list[dict]:
    """The breached thresholds of a warning, most severe per indicator; model contributions (no threshold)
    explain the score but are not findings an institution can be told to rectify."""
    severity = {tier: i for i, tier in enumerate(TIERS)}
    kept: dict[str, dict] = {}
    for reason in sorted((r for r in reasons if r.get("threshold") is not None),
                         key=lambda r: severity.get(r.get("tier"), len(TIERS))):
        kept.setdefault(reason["indicator"], reason)
    return list(kept.values())


class NotAllowed(PermissionError):
    """The user may not issue for these rows (role or scope)."""


def issue_notices(con: duckdb.DuckDBPyConnection, engine: sa.Engine, scope: Scope, actor: str,
                  keys: list[tuple[str, str]], out: Path, today: date,
                  deadline_days: int = cases.DEFAULT_DEADLINE_WORKING_DAYS) -> list[dict]:
    """Open one case per selected warning and write its notice; rows outside the scope are refused.

    The rows are read again from the warehouse under the user's scope, so nothing the browser sends
    (names, tiers, reasons) ends up in a notice unchecked.
    """
    if not scope.can_issue:
        raise NotAllowed("only county officials issue rectification notices")
    rows = data.warning_rows(con, scope, keys)
    if len(rows) != len(set(keys)):
        raise NotAllowed("some selected rows are not warnings in your county")
    pending = [c["notice_no"] for row in rows for c in cases.list_cases(engine, scope.clause, row["institution_id"])
               if c["week"] == row["week"] and c["status"] != "closed"]
    if pending:
        raise NotAllowed(f"already notified, case open: {', '.join(pending)}")
    labels, basis = indicator_labels()
    labels.setdefault("score", ("风险模型评分", "probability"))
    issued = []
    for row in rows:
        new = cases.NewCase(row["institution_id"], row["name"], row["province_code"], row["county_code"],
                            row["week"], row["tier"], findings(row["reasons"]))
        case = cases.open_case(engine, new, actor, today,
                               lambda seq, year, r=row: notices.notice_number(r["province_code"],
                                                                              r["county_code"], year, seq),
                               deadline_days)
        legal = sorted({b for f in new.findings for b in basis.get(f["indicator"], ())})
        page = notices.render_html(case, new.findings, labels, legal)
        html_path, pdf_path, sha = notices.write_notice(case, page, Path(out) / "notices")
        issued.append(cases.attach_notice(engine, case["case_id"], actor, str(html_path), str(pdf_path), sha))
    return issued
