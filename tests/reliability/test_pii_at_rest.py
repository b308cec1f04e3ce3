"""No raw phone or resident ID number at rest in anything `tutorwatch run` and the dashboard write: every
file of a run (warehouse text values, workbooks unzipped, PDF text, CSV, HTML, JSON), the notices and the
case database. Complements tests/test_run_*.py, whose byte scans cannot see inside .xlsx (deflated) or
PDF streams. (The state a SIGKILL leaves is scanned in test_faults.py.) And no ingestion without the key."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from dashboards import cases, data
from dashboards.issue import issue_notices
from dashboards.scope import Scope
from ingest_helpers import write_base
from pipelines.defs.ingest.assets import feed_assets
from pipelines.resources import FoldersResource, WarehouseResource
from pipelines.warehouse import connect
from reliability_helpers import RISKY, pii_leaks, planted_numbers, readable
from tutorwatch import settings


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


@pytest.mark.parametrize("key", [None, "", "fifteen-chars!!"])
def test_the_dagster_path_refuses_to_ingest_without_a_proper_key(tmp_path, monkeypatch, key):
    """What the weekly schedule runs (not the CLI, whose refusal tests/test_run_handmade.py checks): no key,
    an empty one or one shorter than 16 characters stops the ingest asset before any row is read."""
    if key is None:
        monkeypatch.delenv(settings.ENV_PII_KEY, raising=False)
    else:
        monkeypatch.setenv(settings.ENV_PII_KEY, key)
    landing = tmp_path / "landing"
    write_base(landing)
    warehouse = tmp_path / "dg.duckdb"
    # an instance of its own: a test elsewhere may leave Dagster's current-instance state pointing at a dead one
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [asset for asset in feed_assets if asset.key.path[-1] == "institutions"], instance=instance,
            resources={"duckdb": WarehouseResource(database=str(warehouse)),
                       "folders": FoldersResource(landing_dir=str(landing), out_dir=str(tmp_path / "out"))},
            raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    cause = failure.step_failure_data.error.cause
    assert cause.cls_name == "PiiKeyMissing" and "TUTORWATCH_PII_KEY" in cause.message
    with connect(warehouse, read_only=True) as con:
        assert con.execute("select count(*) from information_schema.tables where table_schema = 'staging'"
                           ).fetchone()[0] == 0
