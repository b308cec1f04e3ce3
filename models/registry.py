"""The model registry: one folder per trained version under `<out>/models/`, and a pointer to the current one.

Each version holds the calibrated champion and challenger (skops, no pickle), `metadata.json` (training
weeks, data snapshot hash, features, library versions, backtest scores, seed) and `model_card.md`.
"""

from __future__ import annotations

import json
import platform
from importlib.metadata import version as package_version
from pathlib import Path

import skops.io as sio

from models.training import OWN_STEPS

CURRENT = "current.json"
TRUSTED_PREFIXES = ("sklearn.", "numpy.")
TRUSTED_STEPS = {f"{step.__module__}.{step.__qualname__}" for step in OWN_STEPS}
LIBRARIES = ("scikit-learn", "numpy", "pandas", "duckdb", "skops", "shap")


def models_dir(out: Path) -> Path:
    return Path(out) / "models"


def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **{lib: package_version(lib) for lib in LIBRARIES}}


def save(out: Path, model_version: str, estimators: dict, metadata: dict, card: str) -> Path:
    """Write a version folder and make it current; returns the folder."""
    folder = models_dir(out) / model_version
    folder.mkdir(parents=True, exist_ok=True)
    for name, estimator in estimators.items():
        sio.dump(estimator, folder / f"{name}.skops")
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2, ensure_ascii=False), encoding="utf-8")
    (folder / "model_card.md").write_text(card, encoding="utf-8")
    set_current(out, {"model_version": model_version, "trained": True})
    return folder


def set_current(out: Path, pointer: dict) -> None:
    models_dir(out).mkdir(parents=True, exist_ok=True)
    (models_dir(out) / CURRENT).write_text(json.dumps(pointer, ensure_ascii=False), encoding="utf-8")


def current(out: Path) -> dict | None:
    """The pointer written by the last training run: `{model_version, trained}` or `{trained: false, reason}`."""
    path = models_dir(out) / CURRENT
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def metadata(out: Path, model_version: str) -> dict:
    return json.loads((models_dir(out) / model_version / "metadata.json").read_text(encoding="utf-8"))


def load_estimator(out: Path, model_version: str, name: str):
    """Load one saved model, trusting only scikit-learn and numpy types and the pipeline steps of
    `models.training` (what training writes)."""
    path = models_dir(out) / model_version / f"{name}.skops"
    untrusted = sio.get_untrusted_types(file=path)
    unexpected = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES) and t not in TRUSTED_STEPS]
    if unexpected:
        raise ValueError(f"{path} holds types outside scikit-learn, numpy and models.training's steps: {unexpected}")
    return sio.load(path, trusted=untrusted)


CARD_COLUMNS = ("precision_at_k", "event_recall", "median_lead_weeks", "average_precision", "roc_auc", "brier")


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def model_card(meta: dict) -> str:
    """The markdown model card written with every training run."""
    bt = meta.get("backtest", {})
    rows = "\n".join(
        f"| {m} | " + " | ".join(_fmt(r.get(c)) for c in CARD_COLUMNS) + " |" for m, r in bt.get("overall", {}).items())
    notes = "\n".join(f"- {n}" for n in bt.get("notes", [])) or "- none"
    return f"""# Model card — tutorwatch risk model {meta['model_version']}

**What it predicts.** For each active off-campus training institution and ISO week, the calibrated
probability (`score`, 0–1) that the institution files an abnormal closure (stopped trading without
settling prepaid fees) 2 to 8 weeks after the end of the week. Used to rank the weekly provincial
warning lists; inspectors visit the top k (1 % of active institutions per province, at least 5).

**Champion:** `{meta['champion']}` (challenger: `{meta['challenger']}`), chosen by the prequential backtest on
precision@k, then event recall, then average precision — not by AUC.

**Training data.** Weeks {meta['training_weeks'][0]} … {meta['training_weeks'][-1]}
({len(meta['training_weeks'])} weeks, {meta['training_rows']} labelled institution-weeks,
{meta['positive_rows']} positive, {meta['positive_events']} abnormal closures). Labels come from the filings
(`staging.institutions`, `closure_reason = 'abnormal'`), never from generated truth. Data snapshot
`{meta['data_snapshot_sha256'][:16]}…`, seed {meta['seed']}.

**Features** ({len(meta['features'])}): every indicator of `marts.institution_week_indicators` (as of week end)
with its changes over 1, 4 and 8 weeks, 8-week max and min, province-week rank and, for money, its share of
the prepaid liability. Calibration: sigmoid on the later block of the training weeks
({meta['calibration_weeks'][0]} … {meta['calibration_weeks'][-1]} for the final fit).

**Backtest** ({bt.get('folds', 0)} folds: expanding training block, 8-week gap, 4-week test block):

| method | precision@k | event recall (2–8 wk) | median lead (wk) | AP | ROC AUC | Brier |
| --- | --- | --- | --- | --- | --- | --- |
{rows}

Notes:
{notes}

**Limits.** Scores of weeks inside the training period are in-sample; only the backtest numbers are
honest estimates. The model learns from closures that were filed as abnormal: an institution that vanishes
without a filing is a negative until it is filed. Drift (PSI per indicator and on the score, scoring week vs
training) is checked every run and warns above 0.25. Reasons (`contributions`) are SHAP values (gradient
boosting) or coefficient × standardised value (logistic regression) on the log-odds scale.

Libraries: {', '.join(f'{k} {v}' for k, v in meta['libraries'].items())}.
"""
