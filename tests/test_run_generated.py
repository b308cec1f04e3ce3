"""`tutorwatch run` on generated data: no planted phone or resident ID number survives anywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.warehouse import connect
from tutorwatch.generator import generate


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    generate(scale="demo", weeks=16, seed=5, out=root / "data", start="2025-06-02", institutions=120)
    proc = subprocess.run(
        [sys.executable, "-m", "tutorwatch.cli", "run", "--landing", str(root / "data" / "landing"),
         "--out", str(root / "out"), "--weeks", "2025-W37:2025-W38"],
        capture_output=True, text=True, cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    planted = set((root / "data" / "truth" / "pii_planted.txt").read_text(encoding="utf-8").split())
    return root / "out", planted


def test_every_output_file_is_free_of_planted_numbers(generated_run):
    out, planted = generated_run
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".xlsx" for p in files) and any(p.suffix == ".pdf" for p in files)
    leaks = [(p.name, n) for p in files for n in planted if n.encode() in p.read_bytes()]
    assert leaks == []


def test_no_text_column_of_the_warehouse_holds_a_planted_number(generated_run):
    """The DuckDB file compresses strings, so its bytes alone prove little: read every text value back."""
    out, planted = generated_run
    with connect(out / "warehouse.duckdb", read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type in ('VARCHAR', 'JSON')").fetchall()
        con.execute("create temp table planted (n varchar)")
        con.executemany("insert into planted values (?)", [(n,) for n in planted])
        leaks = [
            (f"{schema}.{table}.{column}", hits)
            for schema, table, column in columns
            if (hits := con.execute(
                f'select count(*) from "{schema}"."{table}" t join planted on strpos(t."{column}"::varchar, n) > 0'
            ).fetchone()[0])
        ]
        masked = con.execute("select count(*) from staging.complaints where text like '%1**********%'").fetchone()[0]
    assert len(columns) > 50
    assert masked > 0  # complaint texts did carry numbers, and they were masked
    assert leaks == []
