"""`tutorwatch run` on generated data: no planted phone or resident ID number survives anywhere."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from pipelines.warehouse import connect
from tutorwatch.generator import generate


DIGIT_RUN = re.compile(rb"[0-9]{11,}X?")


def planted_in(runs: Iterable[bytes], planted: set[bytes]) -> set[bytes]:
    """Planted numbers (11-digit phones, 18-character IDs) inside any of the digit runs, in one pass."""
    found = set()
    for run in runs:
        for width in (11, 18):
            found.update(run[i:i + width] for i in range(len(run) - width + 1) if run[i:i + width] in planted)
    return found


@pytest.fixture(scope="module")
def generated_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    generate(scale="demo", weeks=16, seed=5, out=root / "data", start="2025-06-02", institutions=120)
    proc = subprocess.run(
        [sys.executable, "-m", "tutorwatch.cli", "run", "--landing", str(root / "data" / "landing"),
         "--out", str(root / "out"), "--weeks", "2025-W37:2025-W38"],
        capture_output=True, text=True, cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 at a time" in proc.stdout  # the publication went through the worker processes
    planted = set((root / "data" / "truth" / "pii_planted.txt").read_bytes().split())
    return root / "out", planted


def test_every_output_file_is_free_of_planted_numbers(generated_run):
    out, planted = generated_run
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix == ".xlsx" for p in files) and any(p.suffix == ".pdf" for p in files)
    sample = next(iter(planted))
    assert planted_in(DIGIT_RUN.findall(b"tel:9" + sample + b";"), planted) == {sample}  # the scan finds them
    leaks = [(p.name, hits) for p in files if (hits := planted_in(DIGIT_RUN.findall(p.read_bytes()), planted))]
    assert leaks == []


def test_no_text_column_of_the_warehouse_holds_a_planted_number(generated_run):
    """The DuckDB file compresses strings, so its bytes alone prove little: read every text value back."""
    out, planted = generated_run
    with connect(out / "warehouse.duckdb", read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type in ('VARCHAR', 'JSON')").fetchall()
        leaks = [
            (f"{schema}.{table}.{column}", hits)
            for schema, table, column in columns
            if (hits := planted_in((r[0].encode() for r in con.execute(
                f'select distinct unnest(regexp_extract_all("{column}"::varchar, \'[0-9]{{11,}}X?\')) '
                f'from "{schema}"."{table}"').fetchall()), planted))
        ]
        masked = con.execute("select count(*) from staging.complaints where text like '%1**********%'").fetchone()[0]
    assert len(columns) > 50
    assert masked > 0  # complaint texts did carry numbers, and they were masked
    assert leaks == []
