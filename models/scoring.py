"""Train, register and score: what the Dagster assets `risk_model` and `institution_week_scores` call.

Training never fails for lack of history: with too few abnormal closures it records why and scoring falls
back to the transparent rule score, so a small landing directory still gets warning lists.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict

import duckdb
import numpy as np
import pandas as pd

from models import drift, metrics, registry, rule_score
from models.backtest import BacktestResult, Capacity, Fold, run_backtest
from models.dataset import Dataset, load_dataset
from models.explain import contributions_json
from models.features import add_features, load_mart
from models.labels import data_as_of
from models.training import LOGISTIC, MODEL_NAMES, SEED, TooFewPositives, fit_calibrated, predict

SCORES_TABLE = "marts.institution_week_scores"
ALL_SCORES_TABLE = "marts.model_scores_all"
RULE_MODEL_NAME, RULE_MODEL_VERSION = "rule_score", "rules"  # indicators.rules reads this name as its rule score
EXPLAIN_SHARE, EXPLAIN_MIN = 0.10, 25  # tree explanations for the top of each province-week (the listable rows)


def snapshot_hash(ds: Dataset) -> str:
    """sha256 of the labelled feature rows the model was trained on (same data → same hash)."""
    cols = ["institution_id", "week", *ds.features, "label", "observed"]
    hashed = pd.util.hash_pandas_object(ds.labelled[cols], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def _skip(out, reason: str) -> dict:
    registry.set_current(out, {"trained": False, "reason": reason})
    return {"trained": False, "reason": reason}


def _clean(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _backtest_summary(bt: BacktestResult) -> dict:
    overall = bt.overall()
    return {
        "folds": len({f for f in bt.metrics["fold"] if f}),
        "fold_weeks": [asdict(f) for f in bt.folds],
        "champion": bt.champion,
        "overall": {m: {k: _clean(v) for k, v in row.items() if k != "fold"} for m, row in overall.iterrows()},
        "notes": bt.notes,
    }


def train_risk_model(con: duckdb.DuckDBPyConnection, out, seed: int = SEED, capacity: Capacity = Capacity()) -> dict:
    """Backtest both candidates, fit the final models on all labelled weeks, save the version; returns metadata."""
    ds = load_dataset(con)
    if blocker := ds.training_blocker():
        return _skip(out, blocker)
    bt = run_backtest(ds, capacity, seed)
    champion = bt.champion or LOGISTIC
    challenger = next(n for n in MODEL_NAMES if n != champion)
    try:
        fitted = {name: fit_calibrated(name, ds.labelled, ds.features, seed) for name in MODEL_NAMES}
    except TooFewPositives as exc:
        return _skip(out, f"training skipped: {exc}; scores come from the transparent rule score")
    train_rows = ds.labelled[ds.labelled["observed"]]
    split = fitted[champion][1]
    digest = snapshot_hash(ds)
    training_weeks = sorted(train_rows["week"].unique())
    model_version = f"{training_weeks[-1]}-{digest[:8]}"
    summary = _backtest_summary(bt)
    if bt.champion is None:
        summary["notes"].append("no backtest fold could be evaluated: champion defaults to logistic_regression")
    meta = {
        "model_version": model_version, "champion": champion, "challenger": challenger, "seed": seed,
        "training_weeks": training_weeks, "fit_weeks": split.fit_weeks, "calibration_weeks": split.calibration_weeks,
        "training_rows": len(train_rows), "positive_rows": int(train_rows["label"].sum()),
        "positive_events": int(train_rows.loc[train_rows["label"] == 1, "institution_id"].nunique()),
        "data_snapshot_sha256": digest, "indicators": ds.indicators, "features": ds.features,
        "libraries": registry.library_versions(), "capacity": {"share": capacity.share, "minimum": capacity.minimum},
        "backtest": summary,
        "drift_reference": {
            "features": {f: drift.profile(train_rows[f].to_numpy()) for f in ds.indicators},
            "score": drift.profile(predict(fitted[champion][0], train_rows, ds.features)),
        },
    }
    folder = registry.save(out, model_version, {n: f[0] for n, f in fitted.items()}, meta, registry.model_card(meta))
    bt.save(folder / "backtest")
    return {"trained": True, **meta}


def load_backtest(out, model_version: str) -> BacktestResult:
    """The backtest saved with a model version, for the report asset."""
    meta = registry.metadata(out, model_version)
    folder = registry.models_dir(out) / model_version / "backtest"
    predictions = folder / "predictions.parquet"
    summary = meta["backtest"]
    return BacktestResult(
        folds=[Fold(**{k: tuple(v) if isinstance(v, list) else v for k, v in f.items()}) for f in summary["fold_weeks"]],
        metrics=pd.read_csv(folder / "metrics.csv"),
        predictions=pd.read_parquet(predictions) if predictions.exists() else pd.DataFrame(),
        leads=pd.read_csv(folder / "leads.csv", dtype={"institution_id": str}),
        notes=summary["notes"], champion=meta["champion"],
    )


def _explain_mask(frame: pd.DataFrame, scores: np.ndarray, capacity) -> np.ndarray:
    ranked = metrics.top_k(frame[["institution_id", "week", "province_code"]].assign(score=scores),
                           k_fn=capacity)
    return ranked["in_top_k"].to_numpy()


def score_frame(frame: pd.DataFrame, model_version: str, meta: dict, estimators: dict, explain_all: bool = False
                ) -> pd.DataFrame:
    """Scores of every row by champion and challenger; champion contributions for the rows that can be listed.

    Tree explanations cost time, so for gradient boosting only the top 10 % (at least 25) of each
    province-week are explained unless `explain_all`; the logistic regression explains every row.
    """
    features, indicators = meta["features"], meta["indicators"]
    champion = meta["champion"]
    scores = {name: predict(est, frame, features) for name, est in estimators.items()}
    if explain_all or champion == LOGISTIC:
        mask = np.ones(len(frame), dtype=bool)
    else:
        mask = _explain_mask(frame, scores[champion],
                             lambda n: min(n, max(EXPLAIN_MIN, math.ceil(EXPLAIN_SHARE * n))))
    contributions = np.full(len(frame), "[]", dtype=object)
    contributions[mask] = contributions_json(estimators[champion], frame[mask], features, indicators)
    rows = []
    for name, score in scores.items():
        rows.append(frame[["institution_id", "week"]].assign(
            model_name=name, model_version=model_version, score=score,
            role="champion" if name == champion else "challenger",
            contributions=contributions if name == champion else None))
    return pd.concat(rows, ignore_index=True)


def _write(con: duckdb.DuckDBPyConnection, scored: pd.DataFrame) -> None:
    con.execute("create schema if not exists marts")
    con.register("scored_rows", scored)
    try:
        con.execute(f"""create or replace table {ALL_SCORES_TABLE} as
            select institution_id, week, model_name, model_version, role, score, contributions::json as contributions
            from scored_rows order by week, institution_id, role""")
        con.execute(f"""create or replace table {SCORES_TABLE} as
            select institution_id, week, model_name, model_version, score, contributions::json as contributions
            from scored_rows where role in ('champion', 'fallback') order by week, institution_id""")
    finally:
        con.unregister("scored_rows")


def score_institution_weeks(con: duckdb.DuckDBPyConnection, out, explain_all: bool = False) -> dict:
    """Write `marts.institution_week_scores` (champion, or the rule score) and `marts.model_scores_all`."""
    pointer = registry.current(out) or {"trained": False, "reason": "no model has been trained"}
    if not pointer["trained"]:
        rules = rule_score.load(con)
        if rules is None:
            con.execute(f"drop table if exists {SCORES_TABLE}")
            return {"source": "none", "rows": 0, "reason": pointer["reason"] + "; indicators.rules has no rule "
                    "score either, so marts.institution_week_scores is left absent"}
        _write(con, rules.assign(model_name=RULE_MODEL_NAME, model_version=RULE_MODEL_VERSION, role="fallback"))
        return {"source": RULE_MODEL_NAME, "rows": len(rules), "reason": pointer["reason"]}
    version = pointer["model_version"]
    meta = registry.metadata(out, version)
    estimators = {n: registry.load_estimator(out, version, n) for n in (meta["champion"], meta["challenger"])}
    mart, indicators = load_mart(con)
    scored = score_frame(add_features(mart, indicators), version, meta, estimators, explain_all)
    _write(con, scored)
    return {"source": meta["champion"], "model_version": version, "rows": int((scored["role"] == "champion").sum())}


def drift_report(con: duckdb.DuckDBPyConnection, out, week: str | None = None) -> pd.DataFrame | None:
    """PSI per indicator and on the score for `week` against training; None without a model.

    The default week is the latest complete one (ended by the last delivery): a week still being delivered
    looks drifted only because it is partial.
    """
    pointer = registry.current(out)
    if not pointer or not pointer["trained"]:
        return None
    meta = registry.metadata(out, pointer["model_version"])
    reference = meta["drift_reference"]
    week = week or con.execute(
        "select coalesce(max(week) filter (where week_end::date <= ?), max(week)) from marts.institution_week_indicators",
        [data_as_of(con)]).fetchone()[0]
    mart, _ = load_mart(con)
    rows = mart[mart["week"] == week]
    scores = con.execute(f"select score from {SCORES_TABLE} where week = ?", [week]).df()["score"].to_numpy()
    table = [(f, drift.psi(ref, rows[f].to_numpy())) for f, ref in reference["features"].items() if f in rows]
    table.append(("score", drift.psi(reference["score"], scores)))
    return pd.DataFrame(table, columns=["feature", "psi"]).assign(week=week)
