"""Backtest of the rule score against the generator's truth: is the fallback list worth an inspector's visit?

The truth (`<truth>/institutions.csv`: institution_id, province_code, story, closure_date, closure_reason)
is read here and in tests only, never by the pipeline. Every institution-week of the mart is scored with
the rule score (points of its broken rules; 0 points = the baseline), then:

- precision@k per province-week, k = inspection capacity (1 % of active institutions, at least 5), where a
  hit is an institution that closes abnormally 1 to 8 weeks after the week;
- the share of abnormal closures that the rule tiers listed at least `MIN_LEAD_WEEKS` weeks before closing,
  and the median lead of the first listing within 16 weeks.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from indicators.rules import RULE_CUTOFFS, rule_points
from models import metrics

HORIZON_WEEKS = 8
MIN_LEAD_WEEKS = 4


def rule_scores(con: duckdb.DuckDBPyConnection, weeks: list[str] | None = None) -> pd.DataFrame:
    """Every institution-week (of `weeks`, default all) with its rule score and whether the rule tiers alone
    would list it."""
    scored, _ = rule_points(con, weeks)
    scored["listed"] = scored["hard"] | (scored["score"] >= RULE_CUTOFFS.yellow)
    return scored.drop(columns=["hard"])


def abnormal_closures(truth_dir: Path) -> pd.DataFrame:
    truth = pd.read_csv(Path(truth_dir) / "institutions.csv", dtype=str)
    return truth.loc[truth["closure_reason"] == "abnormal", ["institution_id", "province_code", "closure_date"]]


def rule_backtest(con: duckdb.DuckDBPyConnection, truth_dir: Path, weeks: list[str] | None = None) -> str:
    """A plain-text report: precision@k per province-week, overall, and the early-listing share.

    `weeks`: the weeks a list would have been published for (`tutorwatch rule-backtest` passes the runner's
    publishable weeks: the back-filled months before the bank feed starts have no balance to judge).
    Only province-weeks with an abnormal closure ahead are listed row by row (elsewhere precision is 0 by
    construction); the rest are summed per province.
    """
    scored = rule_scores(con, weeks)
    closures = abnormal_closures(truth_dir)
    dated = scored.merge(closures[["institution_id", "closure_date"]], on="institution_id", how="left")
    ahead = metrics.weeks_before(dated["week"], dated["closure_date"].fillna("1900-01-01"))
    scored["label"] = (dated["closure_date"].notna() & ahead.between(1, HORIZON_WEEKS)).astype(int).to_numpy()
    precision = metrics.precision_at_k(scored, "label")
    seen = closures[closures["institution_id"].isin(scored["institution_id"])]
    early = metrics.event_recall(scored, seen, window=(MIN_LEAD_WEEKS, metrics.LEAD_WINDOW[1]), selected_col="listed")
    leads = metrics.lead_times(scored, seen, selected_col="listed")
    hits, k, positives = (int(precision[c].sum()) for c in ("hits", "k", "positives"))
    by_province = precision.groupby("province_code")[["k", "hits", "positives"]].sum()
    by_province["precision"] = by_province["hits"] / by_province["k"]
    return "\n".join([
        "Rule-score backtest (truth: abnormal closures; hit = abnormal closure within 1-8 weeks)",
        precision.loc[precision["positives"] > 0,
                      ["province_code", "week", "n", "k", "hits", "positives", "precision"]].to_string(
            index=False, float_format="{:.3f}".format),
        "per province (all weeks):",
        by_province.to_string(float_format="{:.3f}".format),
        f"overall precision@k: {hits}/{k} = {hits / k if k else float('nan'):.3f} "
        f"(positive institution-weeks in the top k: {hits}/{positives})",
        f"abnormal closures in the data: {len(seen)}; listed by the rules >= {MIN_LEAD_WEEKS} weeks before "
        f"closure (within {metrics.LEAD_WINDOW[1]}): {early:.1%}; "
        f"median lead of the first listing: {metrics.median_lead(leads):.1f} weeks",
    ])
