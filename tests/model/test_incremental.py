"""The model's part of the incremental contract: retrain only when due or forced, rescore only stale weeks."""

import shutil
from datetime import timedelta

import dagster as dg
import pandas as pd
from model_fixtures import filing, synthetic, write_warehouse

from models import registry
from models.features import READ_WEEKS
from models.scoring import retrain_reason, score_institution_weeks
from pipelines.defs.model.assets import RETRAIN_ENV, institution_week_scores, risk_model
from pipelines.resources import FoldersResource, WarehouseResource
from pipelines.warehouse import connect

# The synthetic history: 44 weeks 2026-W02 … 2026-W45, filings known until Monday 2026-11-09 (as of). A week's
# label is mature when week_end + 56 days <= as of, i.e. week_end <= 2026-09-13: the newest is 2026-W37.
NEWEST_TRAINING_WEEK = "2026-W37"
LATER_WEEKS = [f"2026-W{w}" for w in range(38, 46)]  # the 8 weeks after it


def _run(warehouse, out, **config):
    result = dg.materialize(
        [risk_model, institution_week_scores],
        resources={"duckdb": WarehouseResource(database=str(warehouse)),
                   "folders": FoldersResource(landing_dir=str(out), out_dir=str(out))},
        run_config={"ops": {"risk_model": {"config": config}}} if config else None)
    assert result.success
    return ({k: v.value for k, v in result.asset_materializations_for_node(node)[0].metadata.items()}
            for node in ("risk_model", "institution_week_scores"))


def _scores(warehouse) -> pd.DataFrame:
    con = connect(warehouse, read_only=True)
    try:
        return con.execute("select * exclude (_scored_at) from marts.institution_week_scores "
                           "order by institution_id, week").df()
    finally:
        con.close()


def _scored_at(warehouse) -> dict[str, object]:
    con = connect(warehouse, read_only=True)
    try:
        return dict(con.execute("select week, max(_scored_at) from marts.institution_week_scores group by week"
                                ).fetchall())
    finally:
        con.close()


def test_runs_retrain_and_rescore_only_what_changed(tmp_path, monkeypatch):
    monkeypatch.delenv(RETRAIN_ENV, raising=False)
    mart, filings = synthetic()
    warehouse = write_warehouse(tmp_path / "w.duckdb", mart, filings)
    con = connect(warehouse)
    con.execute("alter table marts.institution_week_indicators add column _computed_at timestamptz")
    con.execute("update marts.institution_week_indicators set _computed_at = timestamptz '2026-11-09 08:00:00+00'")
    con.close()
    out = tmp_path / "out"
    weeks = sorted(mart["week"].unique())

    model, scores = _run(warehouse, out)
    assert model["trained"] is True and model["reason"] == "no model has been trained yet"
    version = model["model_version"]
    assert (scores["weeks_scored"], scores["weeks_kept"], scores["rows"]) == (44, 0, len(mart))
    first = _scored_at(warehouse)

    # Nothing new: the model is kept and no week is rescored.
    model, scores = _run(warehouse, out)
    assert model["trained"] is False and model["kept"] == version
    assert (scores["weeks_scored"], scores["weeks_kept"], scores["rows"]) == (0, 44, 0)
    assert _scored_at(warehouse) == first

    # One week's indicators recomputed: that week and the 25 after it, whose features read it (changes, trailing
    # extremes, feed counts against earlier weeks), are rescored, to the scores of scoring everything afresh.
    con = connect(warehouse)
    con.execute("""update marts.institution_week_indicators set coverage_ratio = coverage_ratio - 0.3,
                   _computed_at = now() where week = '2026-W20'""")
    con.close()
    model, scores = _run(warehouse, out)
    assert model["trained"] is False
    reading = [w for w in weeks if "2026-W20" <= w <= "2026-W45"]
    assert READ_WEEKS == 25 and len(reading) == 26
    rows_read = int(mart["week"].isin(reading).sum())  # institutions closed before a week have no row in it
    assert (scores["weeks_scored"], scores["scored"], scores["rows"]) == (26, "2026-W20 … 2026-W45", rows_read)
    second = _scored_at(warehouse)
    assert [w for w in weeks if second[w] != first[w]] == reading
    afresh = tmp_path / "afresh.duckdb"
    shutil.copy(warehouse, afresh)
    con = connect(afresh)
    con.execute("drop table marts.institution_week_scores")
    con.execute("drop table marts.model_scores_all")
    score_institution_weeks(con, out)
    con.close()
    pd.testing.assert_frame_equal(_scores(warehouse), _scores(afresh), rtol=1e-9)  # another chunk: last bits

    # Rows recomputed to the same values (`_changed_at` kept) rescore nothing; a change in one province's week
    # rescores that province-week alone: ranks are within the province-week.
    con = connect(warehouse)
    con.execute("alter table marts.institution_week_indicators add column _changed_at timestamptz")
    con.execute("update marts.institution_week_indicators set _changed_at = _computed_at")
    con.execute("update marts.institution_week_indicators set _computed_at = now() where week = '2026-W22'")
    con.execute("""update marts.institution_week_indicators set coverage_ratio = coverage_ratio - 0.1,
                   _computed_at = now(), _changed_at = now() where week = '2026-W21' and province_code = '11'""")
    cell_stamps = """select i.province_code, max(s._scored_at) from marts.institution_week_scores s
                     join marts.institution_week_indicators i using (institution_id, week)
                     where week = '2026-W21' group by 1"""
    before_w21 = dict(con.execute(cell_stamps).fetchall())
    gone = con.execute("""delete from marts.institution_week_indicators where week = '2026-W21'
                          and province_code = '11' and institution_id = (select min(institution_id)
                          from marts.institution_week_indicators where week = '2026-W21' and province_code = '11')
                          returning institution_id""").fetchone()[0]  # recomputed as no longer active
    con.close()
    model, scores = _run(warehouse, out)
    reading = [w for w in weeks if w >= "2026-W21"]
    rows_11 = int((mart["week"].isin(reading) & (mart["province_code"] == "11")).sum()) - 1
    assert (scores["weeks_scored"], scores["province_weeks_scored"], scores["rows"]) == (25, 25, rows_11)
    con = connect(warehouse, read_only=True)
    after_w21 = dict(con.execute(cell_stamps).fetchall())
    for table in ("institution_week_scores", "model_scores_all"):
        assert not con.execute(f"select count(*) from marts.{table} where week = '2026-W21' and institution_id = ?",
                               [gone]).fetchone()[0]
    con.close()
    assert after_w21["44"] == before_w21["44"] and after_w21["11"] > before_w21["11"]
    assert [w for w in weeks if _scored_at(warehouse)[w] != second[w]] == reading
    second = _scored_at(warehouse)

    # Forced retraining (env, as `tutorwatch run --retrain` sets it): the data changed, so a new version; only
    # the weeks after its newest training week get its scores, older weeks keep what the regulator saw.
    monkeypatch.setenv(RETRAIN_ENV, "1")
    model, scores = _run(warehouse, out)
    assert model["trained"] is True and model["reason"] == "forced" and model["model_version"] != version
    assert model["model_version"].startswith(NEWEST_TRAINING_WEEK)
    assert (scores["weeks_scored"], scores["scored"]) == (8, f"{LATER_WEEKS[0]} … {LATER_WEEKS[-1]}")
    third = _scored_at(warehouse)
    assert [w for w in weeks if third[w] != second[w]] == LATER_WEEKS
    con = connect(warehouse, read_only=True)
    versions = dict(con.execute("select week, any_value(model_version) from marts.institution_week_scores "
                                "group by week").fetchall())
    assert {versions[w] for w in LATER_WEEKS} == {model["model_version"]}
    assert {versions[w] for w in weeks if w not in LATER_WEEKS} == {version}


def test_retrain_is_due_once_labels_matured_for_retrain_every_weeks(tmp_path, trained):
    warehouse = shutil.copy(trained["warehouse"], tmp_path / "w.duckdb")
    out = trained["out"]
    assert registry.metadata(out, trained["meta"]["model_version"])["training_weeks"][-1] == NEWEST_TRAINING_WEEK
    con = connect(warehouse)
    retrain, reason = retrain_reason(con, out, every_weeks=4)
    assert not retrain and "kept" in reason

    def deliver(days_later: int) -> None:
        # A filing delivered later moves the as-of date: 21 days → week_end <= 2026-10-04 (W40, 3 weeks on);
        # 28 days → week_end <= 2026-10-11 (W41, 4 weeks on).
        day = pd.Timestamp("2026-11-09").date() + timedelta(days=days_later)
        row = pd.DataFrame([filing("91110000MA0000001X", day, "updated", "44", None, day)])
        con.register("late_row", row)
        con.execute(f"insert into staging.institutions ({', '.join(row.columns)}) "
                    f"select {', '.join(row.columns)} from late_row")
        con.unregister("late_row")

    deliver(21)
    assert retrain_reason(con, out, every_weeks=4)[0] is False
    assert retrain_reason(con, out, every_weeks=3) == (
        True, "labels matured up to 2026-W40, 3 weeks after the model's newest training week 2026-W37")
    deliver(28)
    assert retrain_reason(con, out, every_weeks=4)[0] is True


def test_a_mart_without_computed_at_is_rescored_whole(tmp_path, trained):
    """Until the indicators side stamps `_computed_at`, there is no telling what changed: every week is rescored."""
    warehouse = shutil.copy(trained["warehouse"], tmp_path / "w.duckdb")
    con = connect(warehouse)
    said: list[str] = []
    outcome = score_institution_weeks(con, trained["out"], progress=said.append)
    assert (outcome["weeks_scored"], outcome["weeks_kept"]) == (44, 0)
    # one line per chunk of weeks, the last counting every week and row scored (a national run is long)
    assert said and said[-1].endswith(f"(44 of 44 weeks, {outcome['rows']:,} rows)")
