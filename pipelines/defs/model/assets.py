"""The risk model as assets: thin wrappers around `models.scoring` and `models.report`."""

import os

import dagster as dg

from models import registry
from models.backtest import Capacity
from models.drift import PSI_WARN
from models.report import current_report, write_report
from models.scoring import (RETRAIN_EVERY_WEEKS, SCORES_TABLE, drift_report, load_backtest, score_institution_weeks,
                            train_risk_model)
from models.training import SEED
from pipelines.resources import FoldersResource, WarehouseResource
from tutorwatch import settings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


RETRAIN_ENV = settings.ENV_RETRAIN


class RiskModelConfig(dg.Config):
    """Seed, inspection capacity (k = share of a province's active institutions, at least minimum) and when to
    retrain: forced (`retrain`, or env TUTORWATCH_RETRAIN=1), else once labels have matured
    `retrain_every_weeks` past the current model's training data."""

    seed: int = SEED
    k_share: float = 0.01
    k_minimum: int = 5
    retrain: bool = False
    retrain_every_weeks: int = RETRAIN_EVERY_WEEKS


@dg.asset(
    group_name="model",
    deps=[dg.AssetKey("institution_week_indicators"), dg.AssetKey("institutions")],
    description="Backtested, calibrated champion and challenger saved under <out>/models/<version>/ "
                "(or the reason training was skipped: too few abnormal closures or weeks).",
)
def risk_model(context: dg.AssetExecutionContext, config: RiskModelConfig, duckdb: WarehouseResource,
               folders: FoldersResource) -> dg.MaterializeResult:
    """Retrain only when due (see `models.scoring.retrain_reason`): the kept model's scores stay stable."""
    force = config.retrain or os.environ.get(RETRAIN_ENV) == "1"
    with duckdb.get_connection() as con:
        meta = train_risk_model(con, folders.out, config.seed, Capacity(config.k_share, config.k_minimum),
                                force=force, every_weeks=config.retrain_every_weeks, progress=context.log.info)
    if not meta["trained"]:
        return dg.MaterializeResult(metadata={k: v for k, v in meta.items() if v is not None})
    champion = meta["backtest"]["overall"].get(meta["champion"], {})
    return dg.MaterializeResult(metadata={
        "trained": True, "reason": meta["reason"], "champion": meta["champion"], "challenger": meta["challenger"],
        "model_version": meta["model_version"], "backtest_folds": meta["backtest"]["folds"],
        "precision_at_k": champion.get("precision_at_k"), "event_recall": champion.get("event_recall"),
        "median_lead_weeks": champion.get("median_lead_weeks"),
        "training_rows": meta["training_rows"], "positive_events": meta["positive_events"],
        "registry": dg.MetadataValue.path(str(registry.models_dir(folders.out) / meta["model_version"])),
    })


@dg.asset(group_name="model", deps=[risk_model],
          description="The backtest report (HTML with charts) of the current model under <out>/backtest/.")
def model_backtest(config: RiskModelConfig, folders: FoldersResource) -> dg.MaterializeResult:
    """Drawn once per model version and capacity: a weekly run that keeps the model keeps its report."""
    pointer = registry.current(folders.out) or {"trained": False, "reason": "no model trained"}
    if not pointer["trained"]:
        return dg.MaterializeResult(metadata={"report": None, "reason": pointer["reason"]})
    capacity = Capacity(config.k_share, config.k_minimum)
    key = f"{pointer['model_version']} k={capacity.share}/{capacity.minimum}"
    if path := current_report(folders.out / "backtest", key):
        return dg.MaterializeResult(metadata={"report": dg.MetadataValue.path(str(path)), "rewritten": False})
    bt = load_backtest(folders.out, pointer["model_version"])
    if bt.predictions.empty:
        return dg.MaterializeResult(metadata={"report": None, "reason": "; ".join(bt.notes)})
    path = write_report(bt, folders.out / "backtest", capacity, key=key)
    return dg.MaterializeResult(metadata={"report": dg.MetadataValue.path(str(path)), "champion": bt.champion,
                                          "folds": len(bt.folds), "rewritten": True})


@dg.asset(
    group_name="model",
    kinds={"duckdb"},
    deps=[risk_model, dg.AssetKey("institution_week_indicators")],
    description=f"{SCORES_TABLE}: the champion's calibrated score and reasons per institution-week "
                "(both models in marts.model_scores_all); the rule score when no model could be trained.",
)
def institution_week_scores(context: dg.AssetExecutionContext, duckdb: WarehouseResource,
                            folders: FoldersResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        outcome = score_institution_weeks(con, folders.out, progress=context.log.info)
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
