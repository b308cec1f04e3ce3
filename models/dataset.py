"""Everything training and backtesting read from the warehouse, loaded once: features, labels, closures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from models import rule_score
from models.features import load_features
from models.labels import abnormal_closures, labels

MIN_POSITIVE_EVENTS = 5
MIN_WEEKS = 20


@dataclass
class Dataset:
    labelled: pd.DataFrame  # the mart rows kept for labels, with their features, `label` and `observed`
    indicators: list[str]
    features: list[str]
    weeks: list[str]  # every ISO week from the first to the last in the mart, without holes
    closures: pd.DataFrame  # abnormal closures from the filings: institution_id, closure_date
    rules: pd.DataFrame | None  # the transparent rule score per institution-week, when indicators.rules has one

    def rule_scores(self, rows: pd.DataFrame) -> np.ndarray | None:
        if self.rules is None:
            return None
        merged = rows[["institution_id", "week"]].merge(self.rules, on=["institution_id", "week"], how="left")
        return merged["score"].fillna(0.0).to_numpy()

    def training_blocker(self) -> str | None:
        """Why no model can be trained on this history, or None when it can."""
        known = self.labelled[self.labelled["observed"] & (self.labelled["label"] == 1)]
        events = known["institution_id"].nunique()
        if events < MIN_POSITIVE_EVENTS or len(self.weeks) < MIN_WEEKS:
            return (f"training skipped: {events} abnormal closures with labelled weeks and {len(self.weeks)} weeks "
                    f"of history (a model needs at least {MIN_POSITIVE_EVENTS} closures and {MIN_WEEKS} weeks); "
                    "scores come from the transparent rule score")
        return None


def iso_weeks_between(first_monday: pd.Timestamp, last_monday: pd.Timestamp) -> list[str]:
    mondays = pd.date_range(first_monday, last_monday, freq="7D")
    return [f"{d.isocalendar().year}-W{d.isocalendar().week:02d}" for d in mondays]


def load_dataset(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> Dataset:
    """Labelled rows with their features (only these: the features are the bulk of the memory)."""
    frame, indicators, features = load_features(con)
    weeks = iso_weeks_between(frame["week_start"].min(), frame["week_start"].max()) if len(frame) else []
    labelled = frame.merge(labels(con, as_of)[["institution_id", "week", "label", "observed"]],
                           on=["institution_id", "week"], how="inner")
    del frame
    return Dataset(labelled, indicators, features, weeks, abnormal_closures(con), rule_score.load(con))
