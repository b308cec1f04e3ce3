"""Prequential backtest: train on the past, skip 8 weeks, score the next block; roll back fold by fold.

The 8-week gap is the label horizon: a training week's label is only known 8 weeks after it, so a model
used at the start of a test block could not have seen anything later. Results are measured the way
inspectors work (precision in the top k per province-week, closures caught 2–8 weeks ahead, lead time),
against simple baselines an analyst would otherwise use.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from models import metrics
from models.dataset import Dataset, load_dataset
from models.training import MODEL_NAMES, SEED, TooFewPositives, fit_calibrated, predict

GAP_WEEKS = 8
TEST_WEEKS = 4
N_FOLDS = 4
MIN_TRAIN_WEEKS = 8
COVERAGE_INDICATOR = "coverage_ratio"  # lower = riskier
COMPLAINT_INDICATOR = "unresolved_complaints"  # complaint count on the institution's books
ORACLE = "oracle_ceiling"  # ranks every positive first: the best precision@k any score could reach
PREDICTION_KEYS = ("institution_id", "week", "province_code", "label")  # with the scores: all a metric reads
METRIC_COLUMNS = ("precision_at_k", "event_recall", "median_lead_weeks", "average_precision", "roc_auc", "brier")


@dataclass(frozen=True)
class Fold:
    number: int
    train_weeks: tuple[str, ...]
    gap_weeks: tuple[str, ...]
    test_weeks: tuple[str, ...]


@dataclass(frozen=True)
class Capacity:
    """Inspection capacity per province-week: `share` of its active institutions, at least `minimum`."""

    share: float = 0.01
    minimum: int = 5

    def k(self, n_active: int) -> int:
        return metrics.inspection_capacity(n_active, self.share, self.minimum)


def make_folds(weeks: list[str], evaluable: list[str], n_folds: int = N_FOLDS, test_weeks: int = TEST_WEEKS,
               gap: int = GAP_WEEKS, min_train_weeks: int = MIN_TRAIN_WEEKS) -> list[Fold]:
    """Folds rolled back from the last evaluable week: [train][gap][test], test blocks adjacent, latest first.

    `weeks` are all consecutive weeks of the data, `evaluable` those whose labels are observed. Stops early
    when a fold would have fewer than `min_train_weeks` training weeks.
    """
    weeks = sorted(weeks)
    if not evaluable:
        return []
    end = weeks.index(max(evaluable)) + 1
    folds = []
    for number in range(n_folds):
        test_stop = end - number * test_weeks
        test_start = test_stop - test_weeks
        train_stop = test_start - gap
        if train_stop < min_train_weeks:
            break
        folds.append(Fold(number + 1, tuple(weeks[:train_stop]), tuple(weeks[train_stop:test_start]),
                          tuple(weeks[test_start:test_stop])))
    return folds


def closures_in_scope(closures: pd.DataFrame, test_weeks: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """Closures that a score in these weeks could have caught 2–8 weeks ahead."""
    if closures.empty:
        return closures
    first, last = (pd.Timestamp(metrics.week_monday(w)) for w in (min(test_weeks), max(test_weeks)))
    monday = metrics.mondays(closures["closure_date"])
    low, high = metrics.RECALL_WINDOW
    scope = (monday - pd.Timedelta(weeks=high) <= last) & (monday - pd.Timedelta(weeks=low) >= first)
    return closures[scope.to_numpy()]


def _safe(fn, *args) -> float:
    try:
        return float(fn(*args))
    except ValueError:  # a single class in the block
        return float("nan")


def evaluate(scored: pd.DataFrame, closures: pd.DataFrame, capacity: Capacity, probabilistic: bool) -> dict:
    """The backtest metrics of one score column `score` over labelled rows (`label`)."""
    k_fn = capacity.k
    pak = metrics.precision_at_k(scored, "label", k_fn=k_fn)
    events = closures_in_scope(closures, sorted(scored["week"].unique()))
    leads = metrics.lead_times(scored, events, k_fn=k_fn)
    y, s = scored["label"].to_numpy(), scored["score"].to_numpy()
    return {
        "precision_at_k": float(pak["precision"].mean()) if len(pak) else float("nan"),
        "hits": int(pak["hits"].sum()),
        "k_total": int(pak["k"].sum()),
        "event_recall": metrics.event_recall(scored, events, k_fn=k_fn),
        "events": len(events),
        "median_lead_weeks": metrics.median_lead(leads) if len(leads) else float("nan"),
        "average_precision": _safe(average_precision_score, y, s),
        "roc_auc": _safe(roc_auc_score, y, s),
        "brier": _safe(brier_score_loss, y, s) if probabilistic else float("nan"),
    }


def _riskier_up(values: pd.Series, lower_is_riskier: bool) -> np.ndarray:
    """An indicator as a score where higher = riskier; missing values rank last."""
    v = values.to_numpy(dtype="float64", copy=True)
    v = -v if lower_is_riskier else v
    v[~np.isfinite(v)] = np.nan
    floor = np.nanmin(v) - 1 if np.isfinite(v).any() else 0.0
    return np.where(np.isnan(v), floor, v)


def _lower_is_riskier(indicator: str) -> bool:
    try:
        from indicators.registry import LOWER, by_name

        return by_name(indicator).direction == LOWER
    except (ImportError, KeyError):
        return indicator == COVERAGE_INDICATOR


def best_single_indicator(train: pd.DataFrame, indicators: list[str]) -> str | None:
    """The indicator (in its risky direction) with the best average precision on the training rows."""
    rows = train[train["observed"]]
    if rows["label"].nunique() < 2:
        return None
    weight = rows["weight"] if "weight" in rows else None  # sampled negatives stand for 1/rate rows each
    scores = {i: average_precision_score(rows["label"], _riskier_up(rows[i], _lower_is_riskier(i)),
                                         sample_weight=weight) for i in indicators}
    return max(scores, key=scores.get)


def baseline_scores(ds: Dataset, train: pd.DataFrame, test: pd.DataFrame, seed: int) -> tuple[dict, list[str]]:
    """Baseline score arrays for the test rows, and notes on baselines that could not be computed."""
    scores = {"random": np.random.default_rng(seed).random(len(test))}
    notes = []
    for name, indicator in (("coverage_ratio_only", COVERAGE_INDICATOR), ("complaints_only", COMPLAINT_INDICATOR)):
        if indicator in ds.indicators:
            scores[name] = _riskier_up(test[indicator], _lower_is_riskier(indicator))
        else:
            notes.append(f"baseline {name} skipped: indicator {indicator} not in the mart")
    if best := best_single_indicator(train, ds.indicators):
        scores["best_single_indicator"] = _riskier_up(test[best], _lower_is_riskier(best))
        notes.append(f"best single indicator on the training block: {best}")
    rule = ds.rule_scores(test)
    if rule is None:
        notes.append("baseline rule_score skipped: indicators.rules provides no rule score")
    else:
        scores["rule_score"] = rule
    return scores, notes


@dataclass
class BacktestResult:
    folds: list[Fold]
    metrics: pd.DataFrame  # one row per fold (0 = all folds) and method
    predictions: pd.DataFrame  # test rows with one score column per method
    leads: pd.DataFrame  # per closure and method: first selected week and lead
    notes: list[str] = field(default_factory=list)
    champion: str | None = None

    def overall(self) -> pd.DataFrame:
        return self.metrics[self.metrics["fold"] == 0].set_index("method")

    def save(self, folder: Path) -> None:
        """The tables the report is drawn from (beside a model version, or under `<out>/backtest/`)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.metrics.to_csv(folder / "metrics.csv", index=False)
        self.leads.to_csv(folder / "leads.csv", index=False)
        if len(self.predictions):
            self.predictions.to_parquet(folder / "predictions.parquet", index=False)


def choose_champion(overall: pd.DataFrame, candidates=MODEL_NAMES) -> str | None:
    """Best precision@k, then event recall, then average precision (not AUC)."""
    rows = overall.loc[[c for c in candidates if c in overall.index]]
    if rows.empty:
        return None
    key = rows[["precision_at_k", "event_recall", "average_precision"]].fillna(-1).round(4)
    return key.sort_values(list(key.columns), ascending=False, kind="stable").index[0]


def _metric_rows(fold: int, predictions: pd.DataFrame, methods: list[str], closures: pd.DataFrame,
                 capacity: Capacity) -> list[dict]:
    rows = []
    for method in methods:
        scored = predictions[["institution_id", "week", "province_code", "label"]].assign(score=predictions[method])
        result = evaluate(scored, closures, capacity, probabilistic=method in MODEL_NAMES)
        rows.append({"fold": fold, "method": method, **result})
    return rows


def run_backtest(ds: Dataset, capacity: Capacity = Capacity(), seed: int = SEED, n_folds: int = N_FOLDS,
                 test_weeks: int = TEST_WEEKS, gap: int = GAP_WEEKS,
                 progress: Callable[[str], None] | None = None) -> BacktestResult:
    """Fit both models per fold on the training block, score the test block, measure models and baselines;
    `progress` hears of each fold done."""
    frame = ds.labelled
    folds = make_folds(ds.weeks, sorted(frame.loc[frame["observed"], "week"].unique()), n_folds, test_weeks, gap)
    notes = [] if len(folds) >= n_folds else [f"only {len(folds)} of {n_folds} folds fit in the data"]
    blocks, metric_rows = [], []
    derived = [f for f in ds.features if f not in ds.indicators]
    narrow = [c for c in frame.columns if c not in derived]
    for fold in folds:
        try:
            fitted = {name: fit_calibrated(name, frame, ds.features, seed, fold.train_weeks)[0] for name in MODEL_NAMES}
        except TooFewPositives as exc:
            notes.append(f"fold {fold.number} skipped: {exc}")
            continue
        test = ds.test_rows(fold.test_weeks)  # read after the fits: a national block (0.6 GB) is not held through them
        scores = {name: predict(model, test, ds.features) for name, model in fitted.items()}
        train = frame.loc[frame["week"].isin(fold.train_weeks), narrow]
        baselines, baseline_notes = baseline_scores(ds, train, test, seed + fold.number)
        notes += [f"fold {fold.number}: {n}" for n in baseline_notes]
        baselines[ORACLE] = test["label"].to_numpy(dtype="float64")
        # the predictions keep what the metrics and the report read: the folds' blocks stay to the end
        test = test[list(PREDICTION_KEYS)].assign(**scores, **baselines, fold=fold.number)
        methods = [*MODEL_NAMES, *baselines]
        metric_rows += _metric_rows(fold.number, test, methods, ds.closures, capacity)
        blocks.append(test)
        if progress:
            progress(f"model: backtest fold {fold.number} of {len(folds)} done (test weeks {fold.test_weeks[0]}…"
                     f"{fold.test_weeks[-1]})")
    if not blocks:
        return BacktestResult(folds, pd.DataFrame(columns=["fold", "method", *METRIC_COLUMNS]), pd.DataFrame(),
                              pd.DataFrame(), notes + ["no fold could be evaluated"])
    predictions = pd.concat(blocks, ignore_index=True)
    methods = [m for m in dict.fromkeys(r["method"] for r in metric_rows) if predictions[m].notna().all()]
    metric_rows += _metric_rows(0, predictions, methods, ds.closures, capacity)
    table = pd.DataFrame(metric_rows)
    leads = pd.concat(
        [metrics.lead_times(predictions.assign(score=predictions[m]),
                            closures_in_scope(ds.closures, sorted(predictions["week"].unique())),
                            k_fn=capacity.k).assign(method=m) for m in methods], ignore_index=True)
    result = BacktestResult(folds, table, predictions, leads, notes)
    result.champion = choose_champion(result.overall())
    return result


def truth_comparison(bt: BacktestResult, closures: pd.DataFrame, truth: Path) -> str:
    """Event-level comparison with the generator's truth (evaluation only; labels never come from it)."""
    path = Path(truth) / "institutions.csv"
    if not path.exists():
        return f"no {path}: event-level comparison with truth skipped"
    planted = pd.read_csv(path, dtype=str)
    planted = planted[planted["closure_reason"] == "abnormal"]
    filed = set(closures["institution_id"])
    lines = [f"truth: {len(planted)} planted abnormal closures; filings: {len(filed)} abnormal closures; "
             f"in both: {len(filed & set(planted['institution_id']))}"]
    if bt.champion and len(bt.leads):
        leads = bt.leads[bt.leads["method"] == bt.champion].merge(planted[["institution_id", "story"]],
                                                                  on="institution_id", how="left")
        leads["caught"] = leads["lead_weeks"].between(*metrics.RECALL_WINDOW)
        per_story = leads.groupby(leads["story"].fillna("not in truth")).agg(
            closures=("institution_id", "size"), caught_2_8_weeks=("caught", "sum"), median_lead=("lead_weeks", "median"))
        lines.append(f"champion {bt.champion} by planted story (backtest test blocks):\n{per_story.to_string()}")
    if bt.champion and len(bt.predictions):
        lines.append("positive institution-weeks in the champion's top k / positives, by planted story and weeks "
                     f"before the closure:\n{positives_caught(bt.predictions, bt.champion, planted).to_string()}")
    return "\n".join(lines)


def positives_caught(predictions: pd.DataFrame, method: str, planted: pd.DataFrame,
                     capacity: Capacity = Capacity()) -> pd.DataFrame:
    """Story × weeks before the planted closure: 'hits/positives' of `method`'s top k (the diagnosis of which
    positives carry no signal yet; evaluation only)."""
    ranked = metrics.top_k(predictions.assign(score=predictions[method]), k_fn=capacity.k)
    rows = ranked[ranked["label"] == 1].merge(planted[["institution_id", "story", "closure_date"]],
                                              on="institution_id", how="left")
    rows["story"] = rows["story"].fillna("not in truth")
    rows["weeks_before"] = metrics.weeks_before(rows["week"], rows["closure_date"]).astype("Int64")
    table = rows.groupby(["story", "weeks_before"], dropna=False)["in_top_k"].agg(["sum", "size"])
    cells = (table["sum"].astype(str) + "/" + table["size"].astype(str)).unstack(fill_value="")
    totals = rows.groupby("story")["in_top_k"].agg(["sum", "size"])
    return cells.assign(all=totals["sum"].astype(str) + "/" + totals["size"].astype(str))


def main(warehouse: Path, truth: Path, out: Path, capacity: Capacity = Capacity(), seed: int = SEED) -> int:
    """`tutorwatch backtest`: run the backtest on the warehouse, write the report under `<out>/backtest/`, print."""
    from models.report import summary_table, write_report
    from pipelines.warehouse import connect

    if not Path(warehouse).exists():
        print(f"tutorwatch backtest: no warehouse at {warehouse} (run `tutorwatch run` first)", file=sys.stderr)
        return 2
    con = connect(warehouse, read_only=True)
    try:
        ds = load_dataset(con, whole_weeks=N_FOLDS * TEST_WEEKS, seed=seed)
    finally:
        con.close()
    bt = run_backtest(ds, capacity, seed)
    comparison = truth_comparison(bt, ds.closures, truth)
    folder = Path(out) / "backtest"
    bt.save(folder)
    report = write_report(bt, folder, capacity, comparison)
    print(summary_table(bt))
    print(comparison)
    print("\n".join(bt.notes))
    print(f"report: {report}")
    return 0
