"""Fixtures of the ingestion tests: a landing folder and a real DuckDB warehouse file in tmp_path."""

from pathlib import Path

import pytest

from pipelines.warehouse import connect


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture
def con(tmp_path: Path):
    connection = connect(tmp_path / "warehouse.duckdb")
    yield connection
    connection.close()
