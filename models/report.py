"""The backtest report: an HTML page with plotly charts (no CDN, the script is inlined) and a printed table."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from sklearn.calibration import calibration_curve

from models import metrics
from models.backtest import METRIC_COLUMNS, ORACLE, BacktestResult, Capacity
from models.training import MODEL_NAMES

REPORT_NAME = "backtest_report.html"


def summary_table(bt: BacktestResult) -> str:
    """The overall metrics as fixed-width text (what `tutorwatch backtest` prints)."""
    overall = bt.overall()
    if overall.empty:
        return "backtest: no fold could be evaluated\n" + "\n".join(bt.notes)
    shown = overall[["precision_at_k", "hits", "k_total", "event_recall", "events", *METRIC_COLUMNS[2:]]]
    marks = pd.Series({m: "*" if m == bt.champion else "" for m in shown.index}, name="champion")
    table = shown.assign(champion=marks).to_string(float_format=lambda v: f"{v:.3f}")
    return "\n".join([table, *([comparison] if (comparison := target_line(bt)) else [])])


def target_line(bt: BacktestResult) -> str | None:
    """The champion's precision@k against the best single indicator (target 2×) and the oracle's ceiling."""
    precision = bt.overall()["precision_at_k"]
    if bt.champion not in precision or "best_single_indicator" not in precision:
        return None
    best = precision["best_single_indicator"]
    ratio = precision[bt.champion] / best if best else float("inf")
    line = (f"precision@k: champion {bt.champion} {precision[bt.champion]:.3f} = {ratio:.2f}× the best single "
            f"indicator ({best:.3f}); target 2×")
    if ORACLE in precision:
        line += (f"; ceiling (oracle ranking every positive first) {precision[ORACLE]:.3f}, the champion reaches "
                 f"{precision[bt.champion] / precision[ORACLE]:.0%} of it")
    return line


def precision_by_week(bt: BacktestResult, capacity: Capacity) -> pd.DataFrame:
    """Mean precision@k over provinces, per week and method."""
    methods = bt.overall().index
    frames = [metrics.precision_at_k(bt.predictions.assign(score=bt.predictions[m]), "label", k_fn=capacity.k)
              .groupby("week")["precision"].mean().rename(m) for m in methods]
    return pd.concat(frames, axis=1).sort_index()


def _figures(bt: BacktestResult, capacity: Capacity) -> list[go.Figure]:
    by_week = precision_by_week(bt, capacity)
    weekly = go.Figure([go.Scatter(x=by_week.index, y=by_week[m], name=m, mode="lines+markers") for m in by_week])
    weekly.update_layout(title="precision@k per week (mean over provinces)", yaxis_title="precision@k")
    leads = bt.leads[bt.leads["method"].isin(MODEL_NAMES)]
    lead_hist = go.Figure([go.Histogram(x=leads.loc[leads["method"] == m, "lead_weeks"].dropna(), name=m,
                                        xbins={"size": 1}) for m in MODEL_NAMES])
    lead_hist.update_layout(title="lead time: weeks between first top-k selection and closure",
                            xaxis_title="weeks before closure", barmode="group")
    calibration = go.Figure([go.Scatter(x=[0, 1], y=[0, 1], name="perfect", line={"dash": "dot"})])
    for m in MODEL_NAMES:
        observed, predicted = calibration_curve(bt.predictions["label"], bt.predictions[m], n_bins=10,
                                                strategy="quantile")
        calibration.add_trace(go.Scatter(x=predicted, y=observed, name=m, mode="lines+markers"))
    calibration.update_layout(title="calibration on the test blocks", xaxis_title="mean score",
                              yaxis_title="observed share closing abnormally within 8 weeks")
    return [weekly, lead_hist, calibration]


def _stamp(key: str) -> str:
    return f'<meta name="tutorwatch-report" content="{html.escape(key)}">'


def current_report(folder: Path, key: str) -> Path | None:
    """The report in `folder` if it was written for `key` (see `write_report`), else None: a weekly run that keeps
    its model need not draw the same charts again (national: millions of backtest predictions)."""
    path = folder / REPORT_NAME
    if not path.exists():
        return None
    with path.open(encoding="utf-8") as page:
        return path if _stamp(key) in page.read(2048) else None


def write_report(bt: BacktestResult, folder: Path, capacity: Capacity = Capacity(), extra_text: str = "",
                 key: str = "") -> Path:
    """Write `<folder>/backtest_report.html` (charts, overall and per-fold tables, notes); returns its path.
    `key` (what the page was drawn from, e.g. the model version and capacity) goes into its head for
    `current_report`."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>tutorwatch — model backtest</h1><p>Champion: <b>{html.escape(str(bt.champion))}</b>. "
             f"{len(bt.folds)} folds: expanding training block, 8-week gap, test block; k = "
             f"{capacity.share:.0%} of a province's active institutions, at least {capacity.minimum}.</p>"]
    if len(bt.predictions):
        for i, fig in enumerate(_figures(bt, capacity)):
            parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))
    comparison = target_line(bt)
    parts.append("<h2>All folds</h2>" + (f"<p>{html.escape(comparison)}</p>" if comparison else "")
                 + bt.overall().to_html(float_format=lambda v: f"{v:.3f}"))
    parts.append("<h2>Per fold</h2>" + bt.metrics[bt.metrics["fold"] > 0].to_html(
        index=False, float_format=lambda v: f"{v:.3f}"))
    folds = pd.DataFrame([{"fold": f.number, "train": f"{f.train_weeks[0]} … {f.train_weeks[-1]}",
                           "gap": f"{f.gap_weeks[0]} … {f.gap_weeks[-1]}",
                           "test": f"{f.test_weeks[0]} … {f.test_weeks[-1]}"} for f in bt.folds])
    parts.append("<h2>Folds</h2>" + folds.to_html(index=False))
    notes = [*bt.notes, *([extra_text] if extra_text else [])]
    parts.append("<h2>Notes</h2><pre>" + html.escape("\n".join(notes) or "none") + "</pre>")
    path = folder / REPORT_NAME
    path.write_text("<!doctype html><html><head><meta charset='utf-8'>" + (_stamp(key) if key else "")
                    + "<title>tutorwatch backtest</title></head>"
                    "<body>" + "\n".join(parts) + "</body></html>", encoding="utf-8")
    return path
