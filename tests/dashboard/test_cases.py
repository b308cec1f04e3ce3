"""Cases and audit on SQLite and PostgreSQL: numbering, deadlines, the state machine, append-only audit."""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa

from dashboards import cases
from dashboards.notices import notice_number

NEW = cases.NewCase("91440104MA5A00001X", "越秀启明教育", "44", "440104", "2026-W10", "red",
                    [{"indicator": "coverage_ratio", "value": 0.35, "threshold": 0.5, "tier": "red"}])


def _number(seq: int, year: int) -> str:
    return notice_number("44", "440104", year, seq)


def test_working_days_skip_weekends():
    # Friday 2026-03-06 + 1 working day = Monday 03-09; + 15 = Friday 03-27 (three full weeks)
    assert cases.add_working_days(date(2026, 3, 6), 1) == date(2026, 3, 9)
    assert cases.add_working_days(date(2026, 3, 6), 15) == date(2026, 3, 27)


def test_open_case_numbers_per_county_and_year_with_deadline(cases_url):
    engine = cases.engine_for(cases_url)
    first = cases.open_case(engine, NEW, "yuexiu", date(2026, 3, 9), _number)
    second = cases.open_case(engine, NEW, "yuexiu", date(2026, 3, 9), _number)
    other = cases.NewCase(**{**NEW.__dict__, "county_code": "440106"})
    haizhu = cases.open_case(engine, other, "haizhu", date(2026, 3, 9), lambda s, y: f"HZ-{y}-{s}")
    assert first["notice_no"] == "〔2026〕粤440104教监整字第0001号"
    assert second["notice_no"] == "〔2026〕粤440104教监整字第0002号"
    assert haizhu["seq"] == 1
    assert first["status"] == "issued"
    assert first["deadline"] == date(2026, 3, 30)  # Monday + 15 working days = Monday three weeks later


def test_state_machine_and_audit_trail(cases_url):
    engine = cases.engine_for(cases_url)
    case = cases.open_case(engine, NEW, "yuexiu", date(2026, 3, 9), _number)
    cid = case["case_id"]
    with pytest.raises(cases.CaseError):
        cases.transition(engine, cid, "closed", "yuexiu")  # issued cannot jump to closed
    cases.transition(engine, cid, "responded", "yuexiu")
    cases.transition(engine, cid, "rectified", "yuexiu")
    cases.transition(engine, cid, "closed", "yuexiu")
    trail = cases.audit_rows(engine, cid)
    assert [a["action"] for a in trail] == ["issue", "status:responded", "status:rectified", "status:closed"]
    assert trail[0]["before"] is None and '"status": "issued"' in trail[0]["after"]
    assert '"status": "responded"' in trail[2]["before"] and '"status": "rectified"' in trail[2]["after"]
    assert all(a["actor"] == "yuexiu" for a in trail)


def test_overdue_then_escalated(cases_url):
    engine = cases.engine_for(cases_url)
    late = cases.open_case(engine, NEW, "yuexiu", date(2026, 3, 9), _number)  # deadline 03-30
    answered = cases.open_case(engine, NEW, "yuexiu", date(2026, 3, 9), _number)
    cases.transition(engine, answered["case_id"], "responded", "yuexiu")
    cases.transition(engine, answered["case_id"], "rectified", "yuexiu")
    assert cases.mark_overdue(engine, date(2026, 3, 30)) == []  # due today is not late yet
    assert cases.mark_overdue(engine, date(2026, 3, 31)) == [late["case_id"]]
    assert cases.transition(engine, late["case_id"], "escalated", "yuexiu")["status"] == "escalated"


@pytest.mark.parametrize("statement", ["UPDATE audit SET actor = 'someone else'", "DELETE FROM audit"])
def test_audit_is_append_only_in_the_database(cases_url, statement):
    engine = cases.engine_for(cases_url)
    cases.open_case(engine, NEW, "yuexiu", date(2026, 3, 9), _number)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        with engine.begin() as con:
            con.exec_driver_sql(statement)
    assert [a["actor"] for a in cases.audit_rows(engine)] == ["yuexiu"]


def test_engine_for_is_idempotent(cases_url):
    cases.engine_for(cases_url)
    engine = cases.engine_for(cases_url)  # triggers created again without error
    cases.open_case(engine, NEW, "yuexiu", date(2026, 3, 9), _number)
    assert len(cases.list_cases(engine)) == 1


def test_plain_postgresql_urls_use_psycopg3():
    assert cases.normalise_url("postgresql://tw@db:5432/cases") == "postgresql+psycopg://tw@db:5432/cases"
    assert cases.normalise_url("postgres://tw@db/cases") == "postgresql+psycopg://tw@db/cases"
    assert cases.normalise_url("sqlite:///out/cases.sqlite") == "sqlite:///out/cases.sqlite"


def _open_after(barrier, url: str) -> None:
    barrier.wait()
    cases.engine_for(url).dispose()


def test_workers_starting_together_all_get_the_schema(tmp_path):
    """gunicorn starts its workers at once; each opens the cases database and must not fail on the CREATE race."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    url = f"sqlite:///{tmp_path / 'cases.sqlite'}"
    barrier = ctx.Barrier(8)
    workers = [ctx.Process(target=_open_after, args=(barrier, url)) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0] * 8
    tables = sa.inspect(sa.create_engine(url)).get_table_names()
    assert {"cases", "audit"} <= set(tables)
