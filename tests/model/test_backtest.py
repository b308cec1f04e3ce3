"""Fold construction, the backtest's metrics against baselines, and `tutorwatch backtest`'s entry point."""

from datetime import timedelta

import pandas as pd
import pytest
from model_fixtures import FIRST_MONDAY, iso_week, write_warehouse

from indicators.registry import NAMES

from models.backtest import PREDICTION_KEYS, choose_champion, main, make_folds

WEEKS = [iso_week(FIRST_MONDAY + timedelta(weeks=w)) for w in range(40)]


def test_folds_leave_an_8_week_gap_and_never_overlap():
    folds = make_folds(WEEKS, WEEKS[:32])  # labels observed up to index 31
    assert len(folds) == 4
    assert folds[0].test_weeks == tuple(WEEKS[28:32])  # the latest test block ends at the last observed week
    tests = [w for f in folds for w in f.test_weeks]
    assert len(tests) == len(set(tests)) == 16
    for fold in folds:
        assert len(fold.gap_weeks) == 8 and len(fold.test_weeks) == 4
        last_train, first_test = WEEKS.index(fold.train_weeks[-1]), WEEKS.index(fold.test_weeks[0])
        assert first_test - last_train == 9  # 8 weeks between them
        assert not set(fold.train_weeks) & set(fold.test_weeks)
        assert fold.train_weeks[0] == WEEKS[0]  # expanding window
    # fold 4: test = index 16..19, gap = 8..15, train = 0..7 (8 weeks, the minimum)
    assert folds[3].train_weeks == tuple(WEEKS[:8])


def test_short_history_gives_fewer_folds():
    # 24 weeks: fold 1 = train 0..11, gap 12..19, test 20..23; fold 2 = train 0..7, gap 8..15, test 16..19;
    # a third fold would train on 4 weeks only.
    folds = make_folds(WEEKS[:24], WEEKS[:24])
    assert [f.test_weeks for f in folds] == [tuple(WEEKS[20:24]), tuple(WEEKS[16:20])]
    assert len(make_folds(WEEKS[:20], WEEKS[:20])) == 1
    assert make_folds(WEEKS[:10], WEEKS[:10]) == []


def test_champion_is_chosen_by_precision_then_recall_then_ap():
    overall = pd.DataFrame({
        "precision_at_k": [0.40, 0.40], "event_recall": [0.7, 0.8], "average_precision": [0.9, 0.2],
    }, index=["logistic_regression", "gradient_boosting"])
    assert choose_champion(overall) == "gradient_boosting"  # equal precision: recall decides, not AP
    overall.loc["logistic_regression", "precision_at_k"] = 0.41
    assert choose_champion(overall) == "logistic_regression"


def test_main_writes_the_report_and_compares_with_truth(synthetic_frames, tmp_path, capsys):
    """On a mart with every registry column (those not planted are NULL), so the rule score is a baseline too."""
    mart, filings = synthetic_frames
    warehouse = write_warehouse(tmp_path / "w.duckdb", mart, filings, NAMES)
    truth = tmp_path / "truth"
    truth.mkdir()
    closed = filings[filings["closure_reason"] == "abnormal"]
    pd.DataFrame({"institution_id": closed["institution_id"], "province_code": closed["province_code"],
                  "story": "discount_abscond", "story_start": "", "closure_date": closed["record_date"],
                  "closure_reason": "abnormal", "strength": 1.0}).to_csv(truth / "institutions.csv", index=False)
    assert main(warehouse, truth, tmp_path / "out") == 0
    printed = capsys.readouterr().out
    assert "truth: 24 planted abnormal closures; filings: 24 abnormal closures; in both: 24" in printed
    report = (tmp_path / "out" / "backtest" / "backtest_report.html").read_text(encoding="utf-8")
    assert "precision@k per week" in report and "calibration" in report and "lead time" in report
    metrics = pd.read_csv(tmp_path / "out" / "backtest" / "metrics.csv")
    overall = metrics[metrics["fold"] == 0].set_index("method")
    assert {"random", "coverage_ratio_only", "complaints_only", "rule_score"} <= set(overall.index)
    # The oracle ranks every positive first: per province-week min(positives, k) / k, k = max(5, ⌈1 % of n⌉).
    test_rows = pd.read_parquet(tmp_path / "out" / "backtest" / "predictions.parquet")
    # the folds' blocks are held to the end of a national backtest: keys, label and scores, no feature
    assert set(test_rows.columns) == {*PREDICTION_KEYS, "fold", *overall.index}
    groups = test_rows.groupby(["province_code", "week"])["label"].agg(["size", "sum"])
    k = groups["size"].map(lambda n: min(n, max(5, -(-n // 100))))
    ceiling = (groups["sum"].clip(upper=k) / k).mean()
    assert overall.loc["oracle_ceiling", "precision_at_k"] == pytest.approx(ceiling)
    assert (overall["precision_at_k"] <= ceiling + 1e-12).all()
    assert "target 2×; ceiling (oracle ranking every positive first)" in printed
    # The planted signal is strong: both models find far more closures in their top k than chance does.
    for model in ("logistic_regression", "gradient_boosting"):
        assert overall.loc[model, "precision_at_k"] > 2 * overall.loc["random", "precision_at_k"]
        assert overall.loc[model, "median_lead_weeks"] >= 4


def test_main_refuses_a_missing_warehouse(tmp_path):
    assert main(tmp_path / "none.duckdb", tmp_path, tmp_path / "out") == 2


def test_positives_caught_counts_top_k_hits_by_story_and_weeks_before_closure():
    """One province-week of 10 institutions (k = 5): positives A (rank 1) and B (rank 7) close 3 weeks after
    2026-W10, C (rank 2) 5 weeks after; D is positive but not in the truth file."""
    from models.backtest import positives_caught

    ids = list("ABCDEFGHIJ")
    scores = {"A": 0.9, "C": 0.8, "E": 0.7, "F": 0.6, "G": 0.5, "H": 0.4, "B": 0.3, "D": 0.2, "I": 0.1, "J": 0.0}
    predictions = pd.DataFrame({"institution_id": ids, "week": "2026-W10", "province_code": "44",
                                "label": [1 if i in "ABCD" else 0 for i in ids], "m": [scores[i] for i in ids]})
    planted = pd.DataFrame({"institution_id": ["A", "B", "C"], "story": ["slow_bleed", "slow_bleed", "fund_diversion"],
                            "closure_date": ["2026-03-25", "2026-03-27", "2026-04-08"]})  # W13, W13, W15
    table = positives_caught(predictions, "m", planted)
    assert table.loc["slow_bleed", 3] == "1/2" and table.loc["slow_bleed", "all"] == "1/2"
    assert table.loc["fund_diversion", 5] == "1/1"
    assert table.loc["not in truth", "all"] == "0/1"
