"""The code location loads, in Python and through `dg check defs`, with every asset the docs name."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

EXPECTED_ASSETS = {
    "institutions", "orders", "consumptions", "refunds", "account_movements", "complaints", "evaluations",
    "bank_continuity_breaks", "institution_week_indicators", "risk_model", "institution_week_scores",
    "model_backtest", "warnings", "warning_lists", "weekly_reports", "province_warning_lists", "province_reports",
}


def test_definitions_hold_every_documented_asset_with_checks(monkeypatch, tmp_path):
    monkeypatch.setenv("TUTORWATCH_WAREHOUSE", str(tmp_path / "w.duckdb"))
    from pipelines.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert EXPECTED_ASSETS <= keys
    checked = {c.asset_key.to_user_string() for c in defs.resolve_asset_graph().asset_check_keys}
    assert {"institutions", "orders", "account_movements"} <= checked
    assert defs.resolve_job_def("weekly_publication") is not None
    assert defs.resolve_job_def("province_publication") is not None


def test_dg_check_defs_passes(repo_root: Path):
    dg_bin = Path(sys.executable).with_name("dg")
    proc = subprocess.run([str(dg_bin), "check", "defs"], cwd=repo_root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "loaded successfully" in proc.stdout + proc.stderr


def test_warehouse_job_is_every_unpartitioned_asset_with_its_checks(monkeypatch, tmp_path):
    """`tutorwatch run` executes the warehouse job before publishing: an asset left out of it would never run."""
    monkeypatch.setenv("TUTORWATCH_WAREHOUSE", str(tmp_path / "w.duckdb"))
    from pipelines.definitions import defs, warehouse_job

    graph = defs.resolve_asset_graph()
    job = warehouse_job()
    assert set(job.asset_layer.selected_asset_keys) == {
        k for k in graph.get_all_asset_keys() if graph.get(k).partitions_def is None}
    assert set(job.asset_layer.asset_graph.asset_check_keys) == {
        c for c in graph.asset_check_keys if graph.get(c.asset_key).partitions_def is None}
    assert job.executor_def is dg.in_process_executor
