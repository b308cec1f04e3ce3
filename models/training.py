"""Two candidate models, each calibrated on a later block of weeks than it was fitted on.

The logistic regression is the transparent baseline; the gradient boosting catches interactions (a sales
spike only matters while coverage is falling). Both give a calibrated probability, the `score`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from models.features import matrix, release_mapped
from models.metrics import week_monday

SEED = 20260323
LOGISTIC, BOOSTING = "logistic_regression", "gradient_boosting"
MODEL_NAMES = (LOGISTIC, BOOSTING)
CALIBRATION_SHARE = 0.3  # share of the training positives the later, calibration block holds at least
MIN_POSITIVES_PER_BLOCK = 2
MAX_FIT_NEGATIVES = 300_000  # negatives kept for training (sampled at one rate; weights undo the skew)
PREDICT_ROWS = 100_000
PARALLEL_ROWS = 200_000  # below this, OpenMP threads cost more than they save on a shared machine
IMPUTED_TOGETHER = 16  # columns per median imputer: 1 costs ~1 s per 100,000 predicted rows; all, 4–5 × the matrix
RECENCY_WEEKS = 26  # a training week's weight is e^(−its age in weeks / 26): last half-year's closures lead


def threads_for(n_rows: int):
    """A thread limit for fitting or predicting `n_rows` rows (one thread for small data)."""
    return threadpool_limits(limits=None if n_rows >= PARALLEL_ROWS else 1)


class TooFewPositives(ValueError):
    """The weeks given hold too few abnormal closures to fit and calibrate a model."""


class Columns(TransformerMixin, BaseEstimator):
    """The trees' select step: the kept columns, a view of the matrix when they are adjacent (a slice).
    ColumnTransformer copies even a passthrough: one more float64 matrix beside a national fit (~0.5 GB)."""

    def __init__(self, columns: slice | list[int]):
        self.columns = columns

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return X[:, self.columns]


class Medians(TransformerMixin, BaseEstimator):
    """The regression's select step: the kept columns, missing values replaced by each column's median.

    One SimpleImputer per `IMPUTED_TOGETHER` columns (its median takes masked and sorted copies of all the
    columns it is given: 4–5 × their size), each written into one C-ordered output, the order the regression
    reads: a ColumnTransformer of the same imputers held every block's output and then stacked them (2 × the
    float64 matrix at once), Fortran-ordered, which the regression copied once more."""

    def __init__(self, columns: list[int]):
        self.columns = columns

    def _blocks(self) -> list[list[int]]:
        return [self.columns[i:i + IMPUTED_TOGETHER] for i in range(0, len(self.columns), IMPUTED_TOGETHER)]

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        self.imputers_ = [SimpleImputer(strategy="median").fit(X[:, block]) for block in self._blocks()]
        # a column with no value in the fitted rows is dropped by its imputer, in fit and transform alike
        self.widths_ = [len(imputer.get_feature_names_out()) for imputer in self.imputers_]
        return self

    def transform(self, X):
        out = np.empty((len(X), sum(self.widths_)))
        ends = np.cumsum(self.widths_)
        for block, imputer, end, width in zip(self._blocks(), self.imputers_, ends, self.widths_):
            out[:, end - width:end] = imputer.transform(X[:, block])
        return out


class BlockScaler(StandardScaler):
    """StandardScaler fitted `IMPUTED_TOGETHER` columns at a time (it scales in place, `copy=False`): fitted
    whole, it takes a float64 temporary of its input's size (~0.5 GB beside a national fit). Each block is fitted
    on a Fortran-ordered copy of its columns, reduced column by column as the whole fit reduced the
    ColumnTransformer's Fortran-ordered output: the same means and variances, bit for bit."""

    def fit(self, X, y=None, sample_weight=None):
        parts = [StandardScaler(copy=False).fit(np.asfortranarray(X[:, i:i + IMPUTED_TOGETHER]),
                                                sample_weight=sample_weight)
                 for i in range(0, X.shape[1], IMPUTED_TOGETHER)]
        self.n_features_in_ = X.shape[1]
        counts = [np.broadcast_to(part.n_samples_seen_, part.mean_.shape) for part in parts]  # per column with NaNs
        self.n_samples_seen_ = (np.concatenate(counts) if any(np.ndim(part.n_samples_seen_) for part in parts)
                                else parts[0].n_samples_seen_)
        for attribute in ("mean_", "var_", "scale_"):
            setattr(self, attribute, np.concatenate([getattr(part, attribute) for part in parts]))
        return self


def arcsinh_in_place(x: np.ndarray) -> np.ndarray:
    """The regression's compression, written over its input: the select step's output, the pipeline's own copy."""
    return np.arcsinh(x, out=x)


OWN_STEPS = (Columns, Medians, BlockScaler, arcsinh_in_place)  # what a saved model may hold besides sklearn's


def make_estimator(name: str, keep: list[int], seed: int = SEED) -> Pipeline:
    """An unfitted candidate reading the feature columns `keep` (those with any value in its training rows).

    Money columns span orders of magnitude, so the regression sees arcsinh values. Closures are rare (a few
    hundred positive rows), so the trees stay shallow with large leaves: deeper trees memorised single
    closures on the demo data (AP 0.10 → 0.32 and 0.01 → 0.06 on two folds with depth 3).
    """
    if name == LOGISTIC:
        return Pipeline([
            ("select", Medians(keep)),
            ("compress", FunctionTransformer(arcsinh_in_place, feature_names_out="one-to-one")),
            ("scale", BlockScaler(copy=False)),  # in place too: the select step's output is the pipeline's copy
            ("model", LogisticRegression(class_weight="balanced", C=0.5, max_iter=2000, random_state=seed)),
        ])
    if name == BOOSTING:
        adjacent = keep and keep == list(range(keep[0], keep[-1] + 1))
        trees = HistGradientBoostingClassifier(learning_rate=0.05, max_iter=200, max_depth=3, min_samples_leaf=100,
                                               l2_regularization=1.0, early_stopping=False, random_state=seed)
        return Pipeline([("select", Columns(slice(keep[0], keep[-1] + 1) if adjacent else keep)), ("model", trees)])
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")


def base_model(calibrated: CalibratedClassifierCV) -> Pipeline:
    """The fitted pipeline inside a calibrated one (what explanations read)."""
    return calibrated.estimator.estimator


def kept_columns(pipeline: Pipeline) -> list[int]:
    """Indices of the features the pipeline reads, in the order its `select` step outputs them."""
    select = pipeline["select"]
    every = np.arange(select.n_features_in_)
    if isinstance(select, (Columns, Medians)):
        return [int(j) for j in every[select.columns]]
    # models pickled by earlier versions (kept in registries) select through a ColumnTransformer
    return [int(j) for name, _, columns in select.transformers_ if name != "remainder" for j in every[columns]]


@dataclass(frozen=True)
class Split:
    fit_weeks: list[str]
    calibration_weeks: list[str]


def split_weeks(frame: pd.DataFrame) -> Split:
    """Fit on the earlier weeks, calibrate on the later ones.

    The cut is the latest week that leaves the calibration block at least `CALIBRATION_SHARE` of the
    positives (closures are rare and bunch up in time, so a fixed share of weeks can leave a block without
    any); both blocks need `MIN_POSITIVES_PER_BLOCK`.
    """
    weeks = sorted(frame["week"].unique())
    positives = frame.groupby("week")["label"].sum().reindex(weeks).to_numpy()
    total = int(positives.sum())
    later = np.cumsum(positives[::-1])[::-1]  # positives from each week to the end
    needed = max(MIN_POSITIVES_PER_BLOCK, CALIBRATION_SHARE * total)
    for cut in range(len(weeks) - 1, 0, -1):
        if later[cut] >= needed and total - later[cut] >= MIN_POSITIVES_PER_BLOCK:
            return Split(weeks[:cut], weeks[cut:])
    raise TooFewPositives(
        f"{total} positive institution-weeks over {len(weeks)} weeks: not enough to fit on one block and "
        f"calibrate on a later one (each needs at least {MIN_POSITIVES_PER_BLOCK})"
    )


def sample_rows(frame: pd.DataFrame, seed: int, weeks=None, cap: int = MAX_FIT_NEGATIVES
                ) -> tuple[pd.DataFrame, np.ndarray]:
    """The observed rows of `weeks` (default: all) to train on, with their weights: every positive (weight 1),
    and negatives sampled at one rate r = cap / the negatives they stand for (seeded), each weighing 1/r.

    `frame` may already be a sample (`weight` = 1/its inclusion chance, see `models.dataset.load_dataset`): a
    row weighing w is kept with chance min(1, r·w), so every negative ends up standing for 1/r rows whatever
    sample it came from. One rate for all the weeks, so a model fitted on the earlier weeks and one fitted on
    all of them see the same skew, and the weighted calibration block stands for the whole one. Only the
    sample is copied: a large history is never duplicated whole."""
    rows = frame["observed"].to_numpy(bool, copy=True)
    if weeks is not None:
        rows &= frame["week"].isin(weeks).to_numpy()
    negative = rows & (frame["label"] == 0).to_numpy()
    prior = frame["weight"].to_numpy() if "weight" in frame else np.ones(len(frame))
    rate = min(1.0, cap / max(1.0, float(prior[negative].sum())))
    chance = np.minimum(1.0, rate * prior)
    keep = rows & (~negative | (np.random.default_rng(seed).random(len(frame)) < chance))
    sample = frame[keep]
    release_mapped(frame)  # the fits that follow hold the sample, not the pages of `frame` it was taken from
    return sample, np.where(negative, prior / chance, 1.0)[keep]


def recency_weights(weeks: pd.Series) -> np.ndarray:
    """Fit weights e^(−age / `RECENCY_WEEKS`), the age counted in weeks before the latest week of `weeks`.

    Stories and the market drift: on inner folds of the training data (never the backtest's test blocks), with
    the feed counts, weighting recent weeks put 284 instead of 271 positives in the top k (every fold gained);
    26 weeks was fixed beforehand, not tuned."""
    mondays = weeks.map({w: pd.Timestamp(week_monday(w)) for w in weeks.unique()})
    age = (mondays.max() - mondays).dt.days.to_numpy() / 7
    return np.exp(-age / RECENCY_WEEKS)


def _calibrated(model: Pipeline, calibration_rows: pd.DataFrame, weights: np.ndarray, features: list[str]
                ) -> CalibratedClassifierCV:
    calibrated = CalibratedClassifierCV(FrozenEstimator(model), method="sigmoid")
    with warnings.catch_warnings():  # the weights are meant for the sigmoid only: the model is frozen
        warnings.filterwarnings("ignore", message="Since FrozenEstimator does not appear to accept sample_weight")
        return calibrated.fit(matrix(calibration_rows, features), calibration_rows["label"].to_numpy(),
                              sample_weight=weights)


def fit_calibrated(name: str, frame: pd.DataFrame, features: list[str], seed: int = SEED, weeks=None,
                   cap: int = MAX_FIT_NEGATIVES) -> tuple[CalibratedClassifierCV, Split]:
    """Fit `name` on the observed rows of `weeks` (default: all) of `frame`, calibrated (sigmoid) out of time.

    A probe with the same settings is fitted on the earlier weeks and calibrated on the later ones; the model
    fitted on all the weeks inherits that calibration. The latest closures are the most like the next ones:
    keeping them out of the fit, as calibrating the model itself would, cost 0.009 of precision@k on the
    province backtest (0.114 → 0.123). Both fits weigh recent weeks more (`recency_weights`)."""
    rows, weights = sample_rows(frame, seed, weeks, cap)
    split = split_weeks(rows)
    fit = rows["week"].isin(split.fit_weeks).to_numpy()
    keep = [j for j, read in enumerate(np.isfinite(rows[features]).any().to_numpy()) if read]
    y, recency = rows["label"].to_numpy(), recency_weights(rows["week"])
    with threads_for(len(rows)):  # each fit's float64 matrix is built for it alone, and freed after it
        probe = make_estimator(name, keep, seed).fit(
            matrix(rows[fit], features), y[fit], model__sample_weight=recency_weights(rows["week"][fit]))
        calibrated = _calibrated(probe, rows[~fit], weights[~fit], features)
        x = matrix(rows, features)
        del rows  # the sample's float32 features are not held through the final fit (half its matrix)
        model = FrozenEstimator(make_estimator(name, keep, seed).fit(x, y, model__sample_weight=recency))
    calibrated.estimator = calibrated.calibrated_classifiers_[0].estimator = model
    return calibrated, split


def predict(calibrated: CalibratedClassifierCV, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Calibrated probability of an abnormal closure within 8 weeks (`PREDICT_ROWS` rows at a time, so the
    model's float64 copy of the features stays small)."""
    if frame.empty:
        return np.empty(0)
    with threads_for(len(frame)):
        return np.concatenate([_predicted(calibrated, frame, i, features) for i in range(0, len(frame), PREDICT_ROWS)])


def _predicted(calibrated: CalibratedClassifierCV, frame: pd.DataFrame, start: int, features: list[str]) -> np.ndarray:
    x = matrix(frame.iloc[start:start + PREDICT_ROWS], features)
    release_mapped(frame)
    return calibrated.predict_proba(x)[:, 1]
