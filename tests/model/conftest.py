"""Fixtures of the model tests (builders in model_fixtures.py, a uniquely named module)."""

from pathlib import Path

import pandas as pd
import pytest
from model_fixtures import synthetic, write_warehouse


@pytest.fixture(scope="session")
def synthetic_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic()


@pytest.fixture
def synthetic_warehouse(tmp_path, synthetic_frames) -> Path:
    mart, filings = synthetic_frames
    return write_warehouse(tmp_path / "warehouse.duckdb", mart, filings)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, synthetic_frames):
    """The synthetic warehouse after `train_risk_model` and `score_institution_weeks` (shared: training costs seconds)."""
    from models.scoring import score_institution_weeks, train_risk_model
    from pipelines.warehouse import connect

    folder = tmp_path_factory.mktemp("trained")
    path = write_warehouse(folder / "warehouse.duckdb", *synthetic_frames)
    out = folder / "out"
    con = connect(path)
    said: list[str] = []
    meta = train_risk_model(con, out, progress=said.append)
    scoring = score_institution_weeks(con, out)
    con.close()
    return {"warehouse": path, "out": out, "meta": meta, "scoring": scoring, "progress": said}
