"""The rule-score backtest on six hand-made institutions and a hand-written truth file."""

from __future__ import annotations

import csv

from publication_fixtures import add_rows

from pipelines.publish.backtest_rules import rule_backtest, rule_scores

A, B, C, D, E, Z = (f"9144010{c}MA5AAAAA1A" for c in "123456")  # sorted A < B < … < Z


def test_precision_and_early_listing_against_truth(warehouse, tmp_path):
    rows = []
    for w in range(1, 5):
        week = f"2026-W{w:02d}"
        for inst in (A, B, C, D, E, Z):
            row = dict(institution_id=inst, week=week, province_code="44", coverage_ratio=1.0)
            if (inst, w) in ((A, 1), (Z, 3)):
                row["coverage_ratio"] = 0.5  # hard red + registry orange
            rows.append(row)
    add_rows(warehouse, rows)
    truth = tmp_path / "truth"
    truth.mkdir()
    with (truth / "institutions.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["institution_id", "province_code", "story", "closure_date", "closure_reason"])
        writer.writerow([A, "44", "absconder", "2026-01-27", "abnormal"])   # W05
        writer.writerow([Z, "44", "absconder", "2026-01-28", "abnormal"])   # W05
        writer.writerow([B, "44", "healthy", "2026-01-28", "normal"])
    report = rule_backtest(warehouse, truth)
    # k = 5 of 6 each week; zero-point ties go by id, so Z is in the top 5 only in W03 (when flagged):
    # hits W01..W04 = 1, 1, 2, 1 -> 5 / 20.
    assert "overall precision@k: 5/20 = 0.250 (positive institution-weeks in the top k: 5/8)" in report
    assert any(line.split()[1:] == ["2026-W03", "6", "5", "2", "2", "0.400"] for line in report.splitlines())
    # A listed 4 weeks ahead (W01), Z only 2 weeks ahead (W03): half early; median lead (4 + 2) / 2.
    assert "abnormal closures in the data: 2" in report
    assert ">= 4 weeks before closure (within 16): 50.0%" in report
    assert "median lead of the first listing: 3.0 weeks" in report


def test_only_the_given_weeks_are_scored(warehouse):
    add_rows(warehouse, [dict(institution_id=inst, week=week, province_code="44",
                              coverage_ratio=0.4 if inst == A else 1.0)
                         for week in ("2026-W01", "2026-W02") for inst in (A, B)])
    scored = rule_scores(warehouse, ["2026-W02"])
    assert sorted(zip(scored["institution_id"], scored["week"])) == [(A, "2026-W02"), (B, "2026-W02")]
    # A (0.4): hard red 9 + registry red (< 0.5) 9 points (coverage is money at risk: weight 3); B: none
    assert dict(zip(scored["institution_id"], scored["points"])) == {A: 18.0, B: 0.0}
