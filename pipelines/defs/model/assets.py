"""The risk model as assets: thin wrappers around `models.scoring` and `models.report`."""

import os

import dagster as dg

from models import registry
from models.backtest import Capacity
from models.drift import PSI_WARN
from models.report import write_report
from models.scoring import SCORES_TABLE, drift_report, load_backtest, score_institution_weeks, train_risk_model
from models.training import SEED
from pipelines.resources import FoldersResource, WarehouseResource

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


class RiskModelConfig(dg.Config):
    """Seed and inspection capacity (k = share of a province's active institutions, at least minimum)."""

    seed: int = SEED
    k_share: float = 0.01
    k_minimum: int = 5


@dg.asset(
    group_name="model",
    deps=[dg.AssetKey("institution_week_indicators"), dg.AssetKey("institutions")],
    description="Backtested, calibrated champion and challenger saved under <out>/models/<version>/ "
                "(or the reason training was skipped: too few abnormal closures or weeks).",
)
def risk_model(config: RiskModelConfig, duckdb: WarehouseResource, folders: FoldersResource) -> dg.MaterializeResult:
    """Retrain on every run: labels of past weeks mature each week, and late filings change them."""
    with duckdb.get_connection() as con:
        meta = train_risk_model(con, folders.out, config.seed, Capacity(config.k_share, config.k_minimum))
    if not meta["trained"]:
        return dg.MaterializeResult(metadata={"trained": False, "reason": meta["reason"]})
    champion = meta["backtest"]["overall"].get(meta["champion"], {})
    return dg.MaterializeResult(metadata={
        "trained": True, "champion": meta["champion"], "challenger": meta["challenger"],
        "model_version": meta["model_version"], "backtest_folds": meta["backtest"]["folds"],
        "precision_at_k": champion.get("precision_at_k"), "event_recall": champion.get("event_recall"),
        "median_lead_weeks": champion.get("median_lead_weeks"),
        "training_rows": meta["training_rows"], "positive_events": meta["positive_events"],
        "registry": dg.MetadataValue.path(str(registry.models_dir(folders.out) / meta["model_version"])),
    })


@dg.asset(group_name="model", deps=[risk_model],
          description="The backtest report (HTML with charts) of the current model under <out>/backtest/.")
def model_backtest(config: RiskModelConfig, folders: FoldersResource) -> dg.MaterializeResult:
    pointer = registry.current(folders.out) or {"trained": False, "reason": "no model trained"}
    if not pointer["trained"]:
        return dg.MaterializeResult(metadata={"report": None, "reason": pointer["reason"]})
    bt = load_backtest(folders.out, pointer["model_version"])
    if bt.predictions.empty:
        return dg.MaterializeResult(metadata={"report": None, "reason": "; ".join(bt.notes)})
    path = write_report(bt, folders.out / "backtest", Capacity(config.k_share, config.k_minimum))
    return dg.MaterializeResult(metadata={"report": dg.MetadataValue.path(str(path)), "champion": bt.champion,
                                          "folds": len(bt.folds)})


@dg.asset(
    group_name="model",
    kinds={"duckdb"},
    deps=[risk_model, dg.AssetKey("institution_week_indicators")],
    description=f"{SCORES_TABLE}: the champion's calibrated score and reasons per institution-week "
                "(both models in marts.model_scores_all); the rule score when no model could be trained.",
)
def institution_week_scores(duckdb: WarehouseResource, folders: FoldersResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        outcome = score_institution_weeks(con, folders.out)
    return dg.MaterializeResult(metadata={k: v for k, v in outcome.items() if v is not None})


@dg.asset_check(asset=institution_week_scores, blocking=False,
                description=f"PSI per indicator and on the score, latest week vs training; warns above {PSI_WARN}.")
def score_drift(duckdb: WarehouseResource, folders: FoldersResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as con:
        table = drift_report(con, folders.out)
    if table is None:
        return dg.AssetCheckResult(passed=True, metadata={"note": "no trained model: nothing to compare"})
    drifted = table[table["psi"] > PSI_WARN]
    return dg.AssetCheckResult(
        passed=drifted.empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"week": table["week"].iloc[0], "max_psi": float(table["psi"].max()),
                  "drifted": ", ".join(drifted["feature"]) or "none",
                  "psi": dg.MetadataValue.md(table[["feature", "psi"]].to_markdown(index=False))},
    )
