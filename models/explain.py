"""Per-row reasons: which indicators pushed an institution-week's score up, on the model's log-odds scale.

Gradient boosting is explained with SHAP (TreeExplainer, exact for trees, offline); the logistic regression
with coefficient × standardised value. A level and everything derived from it (changes, trailing extremes,
rank, share of the liability) are summed under the indicator's name, because officials act on indicators,
not on engineered columns.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
# shap is imported here, not in `feature_contributions`: it keeps the ImportErrors of its optional packages
# (cv2, pyspark, its GPU module) with their tracebacks, and a traceback holds every frame above the import with
# its locals. Imported there, it kept the first scored chunk's frames, features and SHAP values alive for the
# rest of the process: 740 MB at national scale.
import shap
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression

from models.features import base_indicator, matrix
from models.training import base_model, kept_columns, threads_for

TOP_REASONS = 5


def feature_contributions(calibrated: CalibratedClassifierCV, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Array (rows × features) of additive contributions to the model's log-odds (0 for unread features)."""
    pipeline = base_model(calibrated)
    model = pipeline["model"]
    x = pipeline["select"].transform(matrix(frame, features))
    if isinstance(model, LogisticRegression):
        read = pipeline[1:-1].transform(x) * model.coef_[0]
    else:
        with threads_for(len(frame)):
            values = shap.TreeExplainer(model).shap_values(x)
        read = np.asarray(values[1] if isinstance(values, list) else values).reshape(x.shape)
    out = np.zeros((len(frame), len(features)))
    out[:, kept_columns(pipeline)] = read
    return out


def _number(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 6)


def contributions_json(calibrated: CalibratedClassifierCV, frame: pd.DataFrame, features: list[str],
                       indicators: list[str], top: int = TOP_REASONS) -> list[str]:
    """One JSON list per row: `[{indicator, value, contribution}]`, largest contribution first.

    Keeps the indicators that raised the score (at most `top`), or the single largest when none did.
    """
    if frame.empty:
        return []
    per_feature = feature_contributions(calibrated, frame, features)
    owners = [indicators.index(base_indicator(f)) for f in features]
    per_indicator = np.zeros((len(frame), len(indicators)))
    np.add.at(per_indicator.T, owners, per_feature.T)
    levels = frame[indicators].to_numpy(dtype="float64")
    out = []
    for row, values in zip(per_indicator, levels):
        order = np.argsort(-row, kind="stable")
        chosen = [j for j in order[:top] if row[j] > 0] or [order[0]]
        out.append(json.dumps(
            [{"indicator": indicators[j], "value": _number(values[j]), "contribution": round(float(row[j]), 6)}
             for j in chosen], ensure_ascii=False))
    return out
