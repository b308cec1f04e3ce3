"""Population stability (PSI) of each feature and of the score: the scoring week against the training data.

A PSI above 0.25 means the week looks unlike what the model learnt from; its scores need a second look.
"""

from __future__ import annotations

import numpy as np

PSI_WARN = 0.25
BINS = 10
EPS = 1e-4


def profile(values: np.ndarray, bins: int = BINS) -> dict:
    """Quantile bin edges of the reference values and the share in each bin (missing values are a bin)."""
    v = np.asarray(values, dtype="float64")
    finite = v[np.isfinite(v)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1))[1:-1]) if len(finite) else np.array([])
    return {"edges": edges.tolist(), "shares": _shares(v, edges).tolist()}


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype="float64")
    finite = np.isfinite(v)
    counts = np.bincount(np.searchsorted(edges, v[finite], side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, (~finite).sum())
    return counts / max(len(v), 1)


def psi(reference: dict, values: np.ndarray) -> float:
    """Σ (actual − expected) · ln(actual / expected) over the reference's bins."""
    expected = np.asarray(reference["shares"]) + EPS
    actual = _shares(values, np.asarray(reference["edges"])) + EPS
    return float(np.sum((actual - expected) * np.log(actual / expected)))
