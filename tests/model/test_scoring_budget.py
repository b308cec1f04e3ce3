"""Scoring under TUTORWATCH_MEMORY_LIMIT: DuckDB holds a smaller share while Python holds each chunk's frames."""

import shutil

import pytest

from models import scoring
from pipelines.warehouse import FRAMES_SHARE, connect
from tutorwatch import settings


def test_chunks_are_scored_under_duckdbs_smaller_share_and_its_share_comes_back(tmp_path, monkeypatch, trained,
                                                                                duckdb_limit):
    """Its cache of the mart's blocks filled the whole share beside the frames: a national chunk peaked 0.8 GB
    higher. The share comes back afterwards, also when a chunk fails."""
    monkeypatch.setenv(settings.ENV_MEMORY_LIMIT, "4GB")
    con = connect(shutil.copy(trained["warehouse"], tmp_path / "w.duckdb"))
    seen, score_chunk = [], scoring._score_chunk

    def recorded(con, *args):
        seen.append(duckdb_limit(con))
        return score_chunk(con, *args)

    monkeypatch.setattr(scoring, "_score_chunk", recorded)
    try:
        for table in (scoring.SCORES_TABLE, scoring.ALL_SCORES_TABLE):
            con.execute(f"drop table {table}")
        outcome = scoring.score_institution_weeks(con, trained["out"])
        assert outcome["rows"] == trained["scoring"]["rows"]
        assert seen and seen == [pytest.approx(4 * 10**9 * FRAMES_SHARE, rel=0.05)] * len(seen)
        assert duckdb_limit(con) == pytest.approx(4 * 10**9 * settings.DUCKDB_MEMORY_SHARE, rel=0.05)

        monkeypatch.setattr(scoring, "_score_chunk", lambda *args: 1 / 0)
        con.execute(f"drop table {scoring.SCORES_TABLE}")
        with pytest.raises(ZeroDivisionError):
            scoring.score_institution_weeks(con, trained["out"])
        assert duckdb_limit(con) == pytest.approx(4 * 10**9 * settings.DUCKDB_MEMORY_SHARE, rel=0.05)
    finally:
        con.close()
