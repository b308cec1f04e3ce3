"""TUTORWATCH_MEMORY_LIMIT is the process's budget: DuckDB gets its share, a bad value is refused clearly."""

import pytest

from pipelines.warehouse import connect
from tutorwatch import settings


def duckdb_limit_bytes(con) -> float:
    value = con.execute("select current_setting('memory_limit')").fetchone()[0]  # e.g. '2.2 GiB'
    number, unit = value.split()
    return float(number) * {"MiB": 2**20, "GiB": 2**30}[unit]


@pytest.mark.parametrize(("budget", "bytes_"), [("4GB", 4 * 10**9), ("4GiB", 4 * 2**30), ("500 mb", 500 * 10**6)])
def test_duckdb_gets_its_share_of_the_budget(tmp_path, monkeypatch, budget, bytes_):
    monkeypatch.setenv(settings.ENV_MEMORY_LIMIT, budget)
    assert settings.memory_limit() == bytes_
    con = connect(tmp_path / "w.duckdb")
    try:
        assert duckdb_limit_bytes(con) == pytest.approx(bytes_ * settings.DUCKDB_MEMORY_SHARE, rel=0.05)  # shown to 0.1 GiB
    finally:
        con.close()


def test_a_size_without_a_number_is_refused(monkeypatch):
    monkeypatch.setenv(settings.ENV_MEMORY_LIMIT, "four gigabytes")
    with pytest.raises(ValueError, match="TUTORWATCH_MEMORY_LIMIT='four gigabytes'"):
        settings.duckdb_memory_limit()


def test_no_budget_leaves_duckdb_its_default(monkeypatch):
    monkeypatch.delenv(settings.ENV_MEMORY_LIMIT, raising=False)
    assert settings.memory_limit() is None and settings.duckdb_memory_limit() is None
