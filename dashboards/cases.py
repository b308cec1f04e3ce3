"""Rectification cases and their append-only audit trail, in SQLite or PostgreSQL through SQLAlchemy.

The audit table is protected by database triggers, not only by this module, so that nobody with a
database client can quietly rewrite what an official did.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

DEFAULT_DEADLINE_WORKING_DAYS = 15
SCHEMA_ATTEMPTS = 5  # concurrent first starts (gunicorn workers) race to create the schema

# Allowed moves of the case state machine; "escalated" means public notice / black list.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "issued": ("responded", "overdue"),
    "responded": ("rectified", "overdue"),
    "rectified": ("closed",),
    "overdue": ("escalated", "responded"),
    "escalated": ("closed",),
    "closed": (),
}
STATUS_ZH = {"issued": "已下发", "responded": "已回复", "rectified": "已整改", "closed": "已结案",
             "overdue": "已逾期", "escalated": "已升级(公示/黑名单)"}

metadata = sa.MetaData()
cases = sa.Table(
    "cases", metadata,
    sa.Column("case_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("notice_no", sa.String(64), nullable=False, unique=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("institution_id", sa.String(18), nullable=False),
    sa.Column("institution_name", sa.String(200), nullable=False),
    sa.Column("province_code", sa.String(2), nullable=False),
    sa.Column("county_code", sa.String(6), nullable=False),
    sa.Column("week", sa.String(8), nullable=False),
    sa.Column("tier", sa.String(8), nullable=False),
    sa.Column("findings", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("issued_on", sa.Date, nullable=False),
    sa.Column("deadline", sa.Date, nullable=False),
    sa.Column("notice_html", sa.String(400)),
    sa.Column("notice_pdf", sa.String(400)),
    sa.Column("notice_sha256", sa.String(64)),
    sa.Column("issued_by", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("county_code", "year", "seq", name="uq_case_number"),
)
audit = sa.Table(
    "audit", metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("case_id", sa.Integer),
    sa.Column("before", sa.Text),
    sa.Column("after", sa.Text),
)

_SQL = Path(__file__).resolve().parent / "sql"


class CaseError(ValueError):
    """A refused case action (unknown case, illegal transition, out of scope)."""


def default_url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'cases.sqlite'}"


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (the installed driver), not SQLAlchemy's default psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def engine_for(url: str) -> sa.Engine:
    """Create the engine and the schema, including the append-only triggers of the dialect."""
    engine = sa.create_engine(normalise_url(url), future=True)
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        try:
            _create_schema(engine)
            break
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
            # gunicorn's workers start together: another one created a table between the check and the CREATE
            if attempt == SCHEMA_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)
    return engine


def _create_schema(engine: sa.Engine) -> None:
    metadata.create_all(engine)
    trigger_sql = (_SQL / f"audit_append_only_{engine.dialect.name}.sql").read_text(encoding="utf-8")
    with engine.begin() as con:
        for statement in trigger_sql.split(";\n\n"):
            if statement.strip():
                con.exec_driver_sql(statement)


def add_working_days(start: date, days: int) -> date:
    """Monday to Friday count; public holidays are ignored as in docs/indicators.md."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _jsonable(row: dict | None) -> str | None:
    return None if row is None else json.dumps(row, ensure_ascii=False, default=str, sort_keys=True)


def _audit(con: sa.Connection, actor: str, action: str, case_id: int | None, before: dict | None,
           after: dict | None) -> None:
    con.execute(audit.insert().values(at=_now(), actor=actor, action=action, case_id=case_id,
                                      before=_jsonable(before), after=_jsonable(after)))


def _get(con: sa.Connection, case_id: int) -> dict:
    row = con.execute(sa.select(cases).where(cases.c.case_id == case_id)).mappings().first()
    if row is None:
        raise CaseError(f"case {case_id} does not exist")
    return dict(row)


def next_seq(con: sa.Connection, county_code: str, year: int) -> int:
    """Notice numbers run per issuing county and year, as the paper registers do."""
    current = con.execute(sa.select(sa.func.max(cases.c.seq)).where(
        cases.c.county_code == county_code, cases.c.year == year)).scalar()
    return (current or 0) + 1


@dataclass(frozen=True)
class NewCase:
    institution_id: str
    institution_name: str
    province_code: str
    county_code: str
    week: str
    tier: str
    findings: list[dict]


def open_case(engine: sa.Engine, new: NewCase, actor: str, issued_on: date, notice_no_for,
              deadline_days: int = DEFAULT_DEADLINE_WORKING_DAYS) -> dict:
    """Insert an `issued` case with the next number; `notice_no_for(seq, year)` formats the number."""
    with engine.begin() as con:
        seq = next_seq(con, new.county_code, issued_on.year)
        values = dict(
            notice_no=notice_no_for(seq, issued_on.year), seq=seq, year=issued_on.year,
            institution_id=new.institution_id, institution_name=new.institution_name,
            province_code=new.province_code, county_code=new.county_code, week=new.week, tier=new.tier,
            findings=json.dumps(new.findings, ensure_ascii=False), status="issued", issued_on=issued_on,
            deadline=add_working_days(issued_on, deadline_days), issued_by=actor, updated_at=_now())
        case_id = con.execute(cases.insert().values(**values)).inserted_primary_key[0]
        after = _get(con, case_id)
        _audit(con, actor, "issue", case_id, None, after)
    return after


def attach_notice(engine: sa.Engine, case_id: int, actor: str, html: str, pdf: str, sha256: str) -> dict:
    return _update(engine, case_id, actor, "attach_notice",
                   dict(notice_html=html, notice_pdf=pdf, notice_sha256=sha256))


def transition(engine: sa.Engine, case_id: int, new_status: str, actor: str) -> dict:
    """Move a case along the state machine; anything else is refused and not audited as done."""
    with engine.connect() as con:
        status = _get(con, case_id)["status"]
    if new_status not in TRANSITIONS[status]:
        raise CaseError(f"case {case_id}: {status} -> {new_status} is not allowed")
    return _update(engine, case_id, actor, f"status:{new_status}", dict(status=new_status))


def _update(engine: sa.Engine, case_id: int, actor: str, action: str, changes: dict) -> dict:
    with engine.begin() as con:
        before = _get(con, case_id)
        con.execute(cases.update().where(cases.c.case_id == case_id).values(**changes, updated_at=_now()))
        after = _get(con, case_id)
        _audit(con, actor, action, case_id, before, after)
    return after


def mark_overdue(engine: sa.Engine, today: date, actor: str = "system") -> list[int]:
    """Cases still waiting for an answer after their deadline become overdue."""
    with engine.connect() as con:
        late = con.execute(sa.select(cases.c.case_id).where(
            cases.c.status.in_(("issued", "responded")), cases.c.deadline < today)).scalars().all()
    for case_id in late:
        transition(engine, case_id, "overdue", actor)
    return list(late)


def list_cases(engine: sa.Engine, scope_clause=None, institution_id: str | None = None,
               case_id: int | None = None) -> list[dict]:
    """Cases in the caller's scope (`scope_clause(table)` returns a SQLAlchemy predicate or None)."""
    query = sa.select(cases).order_by(cases.c.deadline, cases.c.case_id)
    if scope_clause is not None and (predicate := scope_clause(cases)) is not None:
        query = query.where(predicate)
    if institution_id is not None:
        query = query.where(cases.c.institution_id == institution_id)
    if case_id is not None:
        query = query.where(cases.c.case_id == case_id)
    with engine.connect() as con:
        return [dict(r) for r in con.execute(query).mappings()]


def audit_rows(engine: sa.Engine, case_id: int | None = None) -> list[dict]:
    query = sa.select(audit).order_by(audit.c.audit_id)
    if case_id is not None:
        query = query.where(audit.c.case_id == case_id)
    with engine.connect() as con:
        return [dict(r) for r in con.execute(query).mappings()]
