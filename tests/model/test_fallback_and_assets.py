"""Too little history falls back to the rule score without failing; the assets run in Dagster; PSI by hand."""

import json
import math
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from model_fixtures import FIRST_MONDAY, filing, mart_row, synthetic, write_warehouse

from indicators.registry import NAMES
from indicators.registry import by_name
from indicators.rules import RULE_SCORE_CENTRE, TIER_POINTS
from models import drift, registry
from models.dataset import SCRATCH_PREFIX
from models.scoring import score_institution_weeks, train_risk_model
from pipelines.defs.model.assets import institution_week_scores, model_backtest, risk_model, score_drift
from pipelines.resources import FoldersResource, WarehouseResource
from pipelines.warehouse import connect

RISKY, CALM = "91440000MA0000001X", "91440000MA0000002X"


def small_warehouse(tmp_path):
    """4 weeks, 2 institutions in province 44 (registry default thresholds), one abnormal closure.

    Every registry indicator is a column (the rule book needs them); those not set here are NULL."""
    rows = []
    for w in range(4):
        monday = FIRST_MONDAY + timedelta(weeks=w)
        rows.append(mart_row(RISKY, monday, "44", {"coverage_ratio": 0.45, "unresolved_complaints": 0.0,
                                                   "sales_spike_ratio": 1.0, "discount_depth": 0.1}))
        rows.append(mart_row(CALM, monday, "44", {"coverage_ratio": 1.2, "unresolved_complaints": 0.0,
                                                  "sales_spike_ratio": 1.0, "discount_depth": 0.1}))
    filings = [filing(i, date(2025, 12, 1), "registered", "44", None, date(2025, 12, 1)) for i in (RISKY, CALM)]
    filings.append(filing(RISKY, date(2026, 2, 20), "closed", "44", "abnormal", date(2026, 2, 23)))
    return write_warehouse(tmp_path / "small.duckdb", pd.DataFrame(rows), pd.DataFrame(filings), NAMES)


def test_too_few_closures_falls_back_to_the_rule_score(tmp_path):
    con = connect(small_warehouse(tmp_path))
    meta = train_risk_model(con, tmp_path / "out")
    assert meta["trained"] is False and "training skipped" in meta["reason"]
    assert registry.current(tmp_path / "out")["trained"] is False
    assert not list(tmp_path.glob(f"{SCRATCH_PREFIX}*"))  # nothing left behind beside the warehouse
    outcome = score_institution_weeks(con, tmp_path / "out")
    assert outcome["source"] == "rule_score" and outcome["rows"] == 8
    scores = con.execute("""select institution_id, min(score), max(score), any_value(model_name),
                            any_value(contributions::varchar) from marts.institution_week_scores
                            group by 1 order by 1""").fetchall()
    # RISKY: coverage 0.45 < 0.5 earns the red threshold flag and breaks the hard rule coverage < 0.9 (red):
    # two red flags' points; CALM breaks nothing (0 points). The points per tier and the centre are the rule
    # book's settings (indicators.rules), the sum and the logistic are what this module must apply.
    points = 2 * TIER_POINTS["red"] * by_name("coverage_ratio").rule_weight
    risky_score = 1 / (1 + math.exp(-(points - RULE_SCORE_CENTRE)))
    calm_score = 1 / (1 + math.exp(RULE_SCORE_CENTRE))
    (risky, risky_min, risky_max, name, reasons), (calm, calm_min, calm_max, _, calm_reasons) = \
        sorted(scores, key=lambda r: r[0] != RISKY)
    assert (risky, name) == (RISKY, "rule_score")
    assert risky_min == risky_max == pytest.approx(risky_score)
    assert calm_min == calm_max == pytest.approx(calm_score)
    assert [c["indicator"] for c in json.loads(reasons)] == ["coverage_ratio", "coverage_ratio"]
    assert json.loads(calm_reasons) == []


def _resources(warehouse, out):
    return {"duckdb": WarehouseResource(database=str(warehouse)),
            "folders": FoldersResource(landing_dir=str(out), out_dir=str(out))}


MODEL_ASSETS = [risk_model, model_backtest, institution_week_scores, score_drift]


def test_assets_materialise_on_a_small_landing_without_failing(tmp_path):
    result = dg.materialize(MODEL_ASSETS, resources=_resources(small_warehouse(tmp_path), tmp_path / "out"),
                            selection=[risk_model, model_backtest, institution_week_scores])
    assert result.success
    meta = result.asset_materializations_for_node("risk_model")[0].metadata
    assert meta["trained"].value is False and "training skipped" in meta["reason"].value
    scores = result.asset_materializations_for_node("institution_week_scores")[0].metadata
    assert scores["source"].value == "rule_score"


def test_assets_train_score_report_and_check_drift(tmp_path):
    warehouse = write_warehouse(tmp_path / "w.duckdb", *synthetic())
    out = tmp_path / "out"
    result = dg.materialize(MODEL_ASSETS, resources=_resources(warehouse, out),
                            selection=[risk_model, model_backtest, institution_week_scores])
    assert result.success
    meta = result.asset_materializations_for_node("risk_model")[0].metadata
    assert meta["trained"].value is True and meta["backtest_folds"].value >= 4
    assert meta["precision_at_k"].value > 0 and meta["median_lead_weeks"].value >= 2
    assert (out / "backtest" / "backtest_report.html").exists()
    checks = result.get_asset_check_evaluations()
    assert [c.check_name for c in checks] == ["score_drift"]
    assert checks[0].severity == dg.AssetCheckSeverity.WARN and "max_psi" in checks[0].metadata
    con = connect(warehouse, read_only=True)
    assert con.execute("select count(*) from marts.institution_week_scores").fetchone()[0] == \
        con.execute("select count(*) from marts.institution_week_indicators").fetchone()[0]
    con.close()

    def report_again(**config) -> bool:
        run = dg.materialize([model_backtest], resources=_resources(warehouse, out),
                             run_config={"ops": {"model_backtest": {"config": config}}} if config else None)
        return run.asset_materializations_for_node("model_backtest")[0].metadata["rewritten"].value

    report = out / "backtest" / "backtest_report.html"
    drawn = report.stat().st_mtime_ns
    assert report_again() is False and report.stat().st_mtime_ns == drawn  # same model, same capacity
    assert report_again(k_share=0.02) is True and "k = 2%" in report.read_text(encoding="utf-8")


def test_psi_by_hand():
    reference = drift.profile(np.array([0.0, 0.0, 1.0, 1.0]), bins=2)
    assert reference["edges"] == [0.5] and reference["shares"] == [0.5, 0.5, 0.0]
    assert drift.psi(reference, np.array([0.0, 1.0])) == pytest.approx(0.0)  # same shares
    # all values in the upper bin: (1 − 0.5)·ln(1.0001/0.5001) + (0 − 0.5)·ln(0.0001/0.5001) ≈ 4.605
    expected = (1.0001 - 0.5001) * math.log(1.0001 / 0.5001) + (0.0001 - 0.5001) * math.log(0.0001 / 0.5001)
    assert drift.psi(reference, np.array([1.0, 1.0, 1.0])) == pytest.approx(expected)
    assert drift.psi(reference, np.array([1.0, 1.0, 1.0])) > drift.PSI_WARN
