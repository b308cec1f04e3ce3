"""Fixtures of the dashboard tests: the hand-made warehouse (rows in dashboard_fixture.py) and case
databases on SQLite and, when TUTORWATCH_TEST_PG_URL is set, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from dashboard_fixture import build_warehouse

PG_URL = os.environ.get("TUTORWATCH_TEST_PG_URL")


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return build_warehouse(tmp_path / "warehouse.duckdb")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def cases_url(request, tmp_path: Path):
    """A fresh case database: a SQLite file, or a throw-away schema-free database on the test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cases.sqlite'}"
        return
    if not PG_URL:
        pytest.skip("TUTORWATCH_TEST_PG_URL is not set (.ci/run starts PostgreSQL and sets it)")
    name = f"tw_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    sa.create_engine(url).dispose()
    with admin.connect() as con:
        con.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
