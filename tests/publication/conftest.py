"""Fixtures of the publication tests (helpers live in publication_fixtures.py, a unique module name)."""

import pytest

from pipelines.warehouse import connect, create_staging_tables
from publication_fixtures import INDICATOR_DDL


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = connect(path)
    create_staging_tables(con)
    con.execute(INDICATOR_DDL)
    yield con
    con.close()
