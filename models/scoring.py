"""Train, register and score: what the Dagster assets `risk_model` and `institution_week_scores` call.

Training never fails for lack of history: with too few abnormal closures it records why and scoring falls
back to the transparent rule score, so a small landing directory still gets warning lists.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict

import duckdb
import numpy as np
import pandas as pd

from indicators.compute import changed_at, exists
from indicators.rules import HARD_RULES, MODEL_CUTOFFS, first_listed_week
from models import drift, metrics, registry, rule_score
from models.backtest import N_FOLDS, TEST_WEEKS, BacktestResult, Capacity, Fold, run_backtest
from models.dataset import Dataset, load_dataset
from models.explain import contributions_json
from models.features import (MART, READ_WEEKS, indicator_columns, load_features, load_mart, release_freed_memory,
                             release_mapped, week_chunks)
from models.labels import SQL_DIR, data_as_of, newest_observed_week
from models.training import LOGISTIC, MODEL_NAMES, SEED, TooFewPositives, fit_calibrated, predict
from pipelines.warehouse import beside_frames, memory_lowered

SCORES_TABLE = "marts.institution_week_scores"
ALL_SCORES_TABLE = "marts.model_scores_all"
RULE_MODEL_NAME, RULE_MODEL_VERSION = "rule_score", "rules"  # indicators.rules reads this name as its rule score
RETRAIN_EVERY_WEEKS = 4  # retrain once labels have matured this many weeks past the model's training data
SCORED_AT = "_scored_at"
EXPLAIN_TOP = 25  # tree explanations for the listable rows and for this many more at the top of each province-week


def snapshot_hash(ds: Dataset) -> str:
    """sha256 of the labelled feature rows the model was trained on (same data → same hash)."""
    cols = ["institution_id", "week", *ds.features, "label", "observed"]
    hashed = pd.util.hash_pandas_object(ds.labelled[cols], index=False).to_numpy()
    release_mapped(ds.labelled)
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def _skip(con: duckdb.DuckDBPyConnection, out, reason: str) -> dict:
    """Record why no model was trained, and how far the labels reached (retry once newer labels mature)."""
    registry.set_current(out, {"trained": False, "reason": reason, "observed_through": newest_observed_week(con)})
    return {"trained": False, "reason": reason}


def _weeks_between(first: str, last: str) -> int:
    return (metrics.week_monday(last) - metrics.week_monday(first)).days // 7


def retrain_reason(con: duckdb.DuckDBPyConnection, out, every_weeks: int = RETRAIN_EVERY_WEEKS) -> tuple[bool, str]:
    """Whether to retrain now, and why (or why the current model is kept). Reads the mart with SQL only.

    Retrain when there is no model, when the mart's indicators differ from the model's, or when labels have
    matured for `every_weeks` weeks past the model's newest training week: a weekly retraining would move
    every score each week for a few more labelled weeks."""
    pointer = registry.current(out)
    newest = newest_observed_week(con)
    if pointer is None:
        return True, "no model has been trained yet"
    if not pointer["trained"]:
        if pointer.get("observed_through") == newest:
            return False, f"no newer labels since training was skipped ({pointer['reason']})"
        return True, f"labels matured up to {newest} since training was skipped"
    version = pointer["model_version"]
    if not (registry.models_dir(out) / version / "metadata.json").exists():
        return True, f"the current model {version} is missing from the registry"
    meta = registry.metadata(out, version)
    if meta["indicators"] != indicator_columns(con):
        return True, "the mart's indicators differ from those the model was trained on"
    last = meta["training_weeks"][-1]
    behind = _weeks_between(last, newest) if newest else 0
    if behind >= every_weeks:
        return True, f"labels matured up to {newest}, {behind} weeks after the model's newest training week {last}"
    return False, (f"kept {version}: labels matured up to {newest}, {behind} week(s) after its newest training "
                   f"week {last} (retraining after {every_weeks})")


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


def train_risk_model(con: duckdb.DuckDBPyConnection, out, seed: int = SEED, capacity: Capacity = Capacity(),
                     force: bool = True, every_weeks: int = RETRAIN_EVERY_WEEKS,
                     progress: Callable[[str], None] | None = None) -> dict:
    """Backtest both candidates, fit the final models on all labelled weeks, save the version; returns metadata.

    Unless `force`, first asks `retrain_reason` and keeps the current model (`{"trained": False, "kept": ...}`)
    when nothing calls for a new one. `progress` hears of each phase and backtest fold (an hour at national)."""
    say = progress or (lambda line: None)
    retrain, reason = (True, "forced") if force else retrain_reason(con, out, every_weeks)
    if not retrain:
        pointer = registry.current(out) or {}
        return {"trained": False, "kept": pointer.get("model_version"), "reason": reason}
    release_freed_memory()  # what ingest, contracts and indicators freed in this process (the warehouse job's)
    say(f"model: training ({reason}); loading the dataset")
    with beside_frames(con):
        ds = load_dataset(con, whole_weeks=N_FOLDS * TEST_WEEKS, seed=seed)
    if blocker := ds.training_blocker():
        return _skip(con, out, blocker)
    say(f"model: dataset of {len(ds.labelled):,} sampled rows, {len(ds.features)} features; backtest next")
    with memory_lowered(con):
        bt = run_backtest(ds, capacity, seed, progress=say)
        # the folds' predictions (0.3 GB at national) wait in the dataset's folder while the final models are fitted
        saved_backtest = ds.folder / "backtest"
        bt.save(saved_backtest)
        bt.predictions = pd.DataFrame()
        champion = bt.champion or LOGISTIC
        challenger = next(n for n in MODEL_NAMES if n != champion)
        say(f"model: fitting the final {champion} (champion) and {challenger} on every labelled week")
        try:
            fitted = {name: fit_calibrated(name, ds.labelled, ds.features, seed) for name in MODEL_NAMES}
        except TooFewPositives as exc:
            return _skip(con, out, f"training skipped: {exc}; scores come from the transparent rule score")
    observed = ds.labelled["observed"].to_numpy(bool)
    train_rows = ds.labelled.loc[observed, ["institution_id", "week", "label", *ds.indicators]]
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
        "training_rows": round(ds.labelled.loc[observed, "weight"].sum()), "sampled_rows": len(train_rows),
        "positive_rows": int(train_rows["label"].sum()),
        "positive_events": int(train_rows.loc[train_rows["label"] == 1, "institution_id"].nunique()),
        "data_snapshot_sha256": digest, "indicators": ds.indicators, "features": ds.features,
        "libraries": registry.library_versions(), "capacity": {"share": capacity.share, "minimum": capacity.minimum},
        "backtest": summary,
        "drift_reference": {
            "features": {f: drift.profile(train_rows[f].to_numpy()) for f in ds.indicators},
            "score": drift.profile(predict(fitted[champion][0], ds.labelled, ds.features)[observed]),
        },
    }
    folder = registry.save(out, model_version, {n: f[0] for n, f in fitted.items()}, meta, registry.model_card(meta))
    shutil.copytree(saved_backtest, folder / "backtest", dirs_exist_ok=True)
    return {"trained": True, "reason": reason, **meta}


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


def explain_mask(frame: pd.DataFrame, scores: np.ndarray, listed_from: str | None = None) -> np.ndarray:
    """The rows whose reasons someone reads: every row the warning list can take under the default cut-offs (a
    score at the yellow cut-off or above, or a hard rule broken: most listed rows at national scale, whatever
    their score) and the `EXPLAIN_TOP` highest scores of each province-week (the dashboards' leaders).

    Weeks before `listed_from` (`first_listed_week`) list nobody: there only the top is explained. In the national
    bench data's first chunk, before the feeds begin, the rule would otherwise take 415,789 of 419,478 rows."""
    listable = scores >= MODEL_CUTOFFS.yellow
    for rule in HARD_RULES:
        if rule.indicator in frame:
            values = frame[rule.indicator].to_numpy(dtype="float64")  # missing breaks no rule, as in the SQL
            listable |= (values < rule.threshold) if rule.op == "<" else (values > rule.threshold)
    if listed_from is not None:
        listable &= (frame["week"] >= listed_from).to_numpy()
    ranked = metrics.top_k(frame[["institution_id", "week", "province_code"]].assign(score=scores),
                           k_fn=lambda n: min(n, EXPLAIN_TOP))
    return listable | ranked["in_top_k"].to_numpy()


def score_frame(frame: pd.DataFrame, model_version: str, meta: dict, estimators: dict, explain_all: bool = False,
                listed_from: str | None = None) -> pd.DataFrame:
    """Scores of every row by champion and challenger; champion contributions for the rows that can be listed.

    Tree explanations cost time, so for gradient boosting only the rows of `explain_mask` are explained unless
    `explain_all`; the logistic regression explains every row.
    """
    features, indicators = meta["features"], meta["indicators"]
    champion = meta["champion"]
    scores = {name: predict(est, frame, features) for name, est in estimators.items()}
    if explain_all or champion == LOGISTIC:
        mask = np.ones(len(frame), dtype=bool)
    else:
        mask = explain_mask(frame, scores[champion], listed_from)
    contributions = np.full(len(frame), "[]", dtype=object)
    contributions[mask] = contributions_json(estimators[champion], frame[mask], features, indicators)
    rows = []
    for name, score in scores.items():
        rows.append(frame[["institution_id", "week"]].assign(
            model_name=name, model_version=model_version, score=score,
            role="champion" if name == champion else "challenger",
            contributions=contributions if name == champion else None))
    return pd.concat(rows, ignore_index=True)


def _first_week(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [w for (w,) in con.execute(f"select min(week) from {MART}").fetchall() if w]


def _prepare_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the score tables; tables from before `_scored_at` are dropped (every week gets rescored)."""
    for table in (SCORES_TABLE, ALL_SCORES_TABLE):
        schema, name = table.split(".")
        if exists(con, schema, name) and not exists(con, schema, name, SCORED_AT):
            con.execute(f"drop table {table}")
    con.execute((SQL_DIR / "score_tables.sql").read_text(encoding="utf-8"))


def weeks_to_score(con: duckdb.DuckDBPyConnection, model_version: str, newest_training_week: str,
                   read_weeks: int = READ_WEEKS) -> list[str]:
    """The mart weeks whose scores are missing or stale, and the `read_weeks` weeks after each (see
    sql/weeks_to_score.sql; the rule score reads no earlier week)."""
    sql = (SQL_DIR / "weeks_to_score.sql").read_text(encoding="utf-8").format(changed_at=changed_at(con))
    return [w for (w,) in con.execute(sql, {"model_version": model_version, "read_weeks": read_weeks,
                                            "newest_training_week": newest_training_week}).fetchall()]


def provinces_to_score(con: duckdb.DuckDBPyConnection, weeks: list[str], model_version: str,
                       newest_training_week: str) -> dict[str, tuple[list[str], bool]]:
    """Per stale week, its province-weeks to rescore and whether they are all of them (see
    sql/provinces_to_score.sql); weeks with none are left out."""
    sql = (SQL_DIR / "provinces_to_score.sql").read_text(encoding="utf-8").format(changed_at=changed_at(con, "mart."))
    cells: dict[str, list[tuple[str, bool]]] = {}
    for week, province, stale in con.execute(sql, {"weeks": weeks, "model_version": model_version,
                                                   "read_weeks": READ_WEEKS,
                                                   "newest_training_week": newest_training_week}).fetchall():
        cells.setdefault(week, []).append((province, stale))
    return {week: ([p for p, stale in found if stale], all(stale for _, stale in found))
            for week, found in cells.items() if any(stale for _, stale in found)}


def _drop_orphans(con: duckdb.DuckDBPyConnection, weeks: list[str]) -> None:
    """Scores of `weeks` whose institution-week left the mart (the scored rows alone are replaced)."""
    for table in (SCORES_TABLE, ALL_SCORES_TABLE):
        con.execute(f"""delete from {table} as s where s.week in (select unnest(?::varchar[]))
            and not exists (select 1 from {MART} as m where m.institution_id = s.institution_id and m.week = s.week)""",
                    [weeks])


def _replace_rows(con: duckdb.DuckDBPyConnection, weeks: list[str], scored: pd.DataFrame) -> None:
    """Swap the rows of the institution-weeks in `scored` (of `weeks`) in both tables for `scored` in one
    transaction, stamped `_scored_at = now()`."""
    con.register("scored_rows", scored)
    con.execute("begin transaction")
    try:
        for table in (SCORES_TABLE, ALL_SCORES_TABLE):
            con.execute(f"""delete from {table} as t using (select distinct institution_id, week from scored_rows) as k
                where t.week in (select unnest(?::varchar[])) and t.institution_id = k.institution_id
                    and t.week = k.week""", [weeks])
        con.execute(f"""insert into {ALL_SCORES_TABLE}
            select institution_id, week, model_name, model_version, role, score, contributions::json, now()
            from scored_rows order by week, institution_id, role""")
        con.execute(f"""insert into {SCORES_TABLE}
            select institution_id, week, model_name, model_version, score, contributions::json, now()
            from scored_rows where role in ('champion', 'fallback') order by week, institution_id""")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.unregister("scored_rows")


def _stale_provinces(chunk: list[str], cells: dict[str, tuple[list[str], bool]]) -> list[str] | None:
    """The provinces to feature for a chunk of weeks: None when every province-week of it is stale."""
    if all(cells[w][1] for w in chunk):
        return None
    return sorted({p for w in chunk for p in cells[w][0]})


def _stale_rows(frame: pd.DataFrame, chunk: list[str], cells: dict[str, tuple[list[str], bool]]) -> pd.Series:
    """The rows of `frame` in the chunk's province-weeks to rescore."""
    if _stale_provinces(chunk, cells) is None:
        return frame["week"].isin(chunk)
    stale = [(w, p) for w in chunk for p in cells[w][0]]
    return pd.Series(pd.MultiIndex.from_frame(frame[["week", "province_code"]]).isin(stale), index=frame.index)


def _score_chunk(con: duckdb.DuckDBPyConnection, chunk: list[str], version: str, meta: dict | None,
                 estimators: dict, cells: dict[str, tuple[list[str], bool]], explain_all: bool,
                 listed_from: str | None) -> int:
    """Score and store the stale rows of one chunk of weeks; returns how many were scored. A function of its own
    so that a chunk's frames are freed before the next chunk loads (in the loop they lived until the next
    chunk's replaced them)."""
    if meta is None:
        scored = rule_score.load(con, chunk).assign(model_name=RULE_MODEL_NAME, model_version=version,
                                                     role="fallback")
    else:
        frame, _, _ = load_features(con, metrics.week_monday(chunk[0]), metrics.week_monday(chunk[-1]),
                                    _stale_provinces(chunk, cells))
        scored = score_frame(frame[_stale_rows(frame, chunk, cells)], version, meta, estimators, explain_all,
                             listed_from)
    _replace_rows(con, chunk, scored)
    return int(scored["role"].isin(["champion", "fallback"]).sum())


def score_institution_weeks(con: duckdb.DuckDBPyConnection, out, explain_all: bool = False,
                            progress: Callable[[str], None] | None = None) -> dict:
    """Score what needs it into `marts.institution_week_scores` (champion, or the rule score) and
    `marts.model_scores_all`: weeks never scored, the province-weeks whose indicators changed since their scores,
    and after a retraining the weeks newer than the model's training data. Other rows keep their scores.
    `progress` hears of each chunk of weeks (national scores take tens of minutes)."""
    release_freed_memory()  # what training freed in this process: 0.55 GB at national
    pointer = registry.current(out) or {"trained": False, "reason": "no model has been trained"}
    if not pointer["trained"] and rule_score.load(con, _first_week(con)) is None:
        for table in (SCORES_TABLE, ALL_SCORES_TABLE):
            con.execute(f"drop table if exists {table}")
        return {"source": "none", "rows": 0, "reason": pointer["reason"] + "; indicators.rules has no rule "
                "score either, so marts.institution_week_scores is left absent"}
    _prepare_tables(con)
    con.execute(f"delete from {SCORES_TABLE} where week not in (select week from {MART})")
    con.execute(f"delete from {ALL_SCORES_TABLE} where week not in (select week from {MART})")
    if pointer["trained"]:
        version = pointer["model_version"]
        meta = registry.metadata(out, version)
        estimators = {n: registry.load_estimator(out, version, n) for n in (meta["champion"], meta["challenger"])}
        weeks = weeks_to_score(con, version, meta["training_weeks"][-1])
        cells = provinces_to_score(con, weeks, version, meta["training_weeks"][-1])
        weeks = [w for w in weeks if w in cells]
    else:  # the rule score has no ranks: whole weeks
        version, meta, estimators = RULE_MODEL_VERSION, None, {}
        weeks = weeks_to_score(con, version, "", read_weeks=0)
        cells = {}
    _drop_orphans(con, weeks)
    rows, listed_from = 0, first_listed_week(con)
    with beside_frames(con):
        for chunk in week_chunks(con, weeks):
            rows += _score_chunk(con, chunk, version, meta, estimators, cells, explain_all, listed_from)
            release_freed_memory()
            if progress:
                progress(f"scores: weeks {chunk[0]}…{chunk[-1]} scored ({weeks.index(chunk[-1]) + 1} of "
                         f"{len(weeks)} weeks, {rows:,} rows)")
    total = con.execute(f"select count(distinct week) from {MART}").fetchone()[0]
    outcome = {"source": meta["champion"] if meta else RULE_MODEL_NAME, "model_version": version, "rows": rows,
               "weeks_scored": len(weeks), "weeks_kept": total - len(weeks),
               "scored": f"{weeks[0]} … {weeks[-1]}" if weeks else "none"}
    if meta:
        return {**outcome, "province_weeks_scored": sum(len(cells[w][0]) for w in weeks)}
    return {**outcome, "reason": pointer["reason"]}


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
    monday = metrics.week_monday(week)
    rows, _ = load_mart(con, monday, monday)
    scores = con.execute(f"select score from {SCORES_TABLE} where week = ?", [week]).df()["score"].to_numpy()
    table = [(f, drift.psi(ref, rows[f].to_numpy())) for f, ref in reference["features"].items() if f in rows]
    table.append(("score", drift.psi(reference["score"], scores)))
    return pd.DataFrame(table, columns=["feature", "psi"]).assign(week=week)
