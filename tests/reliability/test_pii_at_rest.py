"""No raw phone or resident ID number at rest in anything `tutorwatch run` and the dashboard write: every
file of a run (warehouse text values, workbooks unzipped, PDF text, CSV, HTML, JSON), the notices and the
case database. Complements tests/test_run_*.py, whose byte scans cannot see inside .xlsx (deflated) or
PDF streams. (The state a SIGKILL leaves is scanned in test_faults.py.)"""

from __future__ import annotations

from datetime import date

from dashboards import cases, data
from dashboards.issue import issue_notices
from dashboards.scope import Scope
from reliability_helpers import RISKY, pii_leaks, planted_numbers, readable


def test_the_scan_sees_inside_workbooks_pdfs_and_the_warehouse(reference_root):
    out = reference_root / "out"
    assert b"15100151002" in planted_numbers() and b"110105198001011238" in planted_numbers()
    assert RISKY.encode() in readable(out / "warnings" / "2026-W03" / "11.xlsx")
    assert "北京".encode() in readable(out / "reports" / "2026-W03" / "11.pdf")
    assert "老师联系不上".encode() in readable(out / "warehouse.duckdb")  # a complaint text, read back


def test_no_planted_number_in_any_file_of_a_run(reference_root):
    files = [p for p in reference_root.rglob("*") if p.is_file() and "landing" not in p.parts]
    assert {p.suffix for p in files} >= {".duckdb", ".csv", ".xlsx", ".html", ".pdf", ".json"}
    assert pii_leaks(reference_root / "out", planted_numbers()) == []
    assert all(p.is_relative_to(reference_root / "out") for p in files)  # nothing written beside out/


def test_no_planted_number_in_notices_and_cases(reference_root, tmp_path):
    engine = cases.engine_for(f"sqlite:///{tmp_path / 'cases.sqlite'}")
    with data.reader(reference_root / "out" / "warehouse.duckdb") as con:
        issue_notices(con, engine, Scope("county", "11", "110105"), "chaoyang", [("2026-W03", RISKY)],
                      tmp_path / "out", date(2026, 1, 20))
    assert {p.suffix for p in (tmp_path / "out" / "notices").iterdir()} == {".html", ".pdf"}
    assert pii_leaks(tmp_path, planted_numbers()) == []
