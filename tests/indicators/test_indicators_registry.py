"""The registry is complete and consistent: every indicator has its SQL, its test, its doc row and thresholds."""

import ast
import re
from pathlib import Path

import pytest

from indicators import registry
from indicators.registry import HIGHER, INDICATORS, LOWER, NAMES, Thresholds, by_name, thresholds_for

REPO = Path(__file__).resolve().parents[2]


def _test_functions(node_id: str) -> set[str]:
    path = REPO / node_id.split("::")[0]
    return {n.name for n in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(n, ast.FunctionDef)}


def test_at_least_twenty_indicators_with_unique_snake_case_names():
    assert len(INDICATORS) >= 20
    assert len(set(NAMES)) == len(NAMES)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in NAMES)


def test_names_other_engineers_rely_on():
    required = {"prepaid_liability_fen", "supervised_balance_fen", "coverage_ratio", "release_beyond_consumed_fen",
                "overdue_refunds", "licence_days_to_expiry", "bank_continuity_breaks_4w",
                "orders_feed_silence_weeks", "bank_feed_silence_weeks"}
    assert required <= set(NAMES)


@pytest.mark.parametrize("indicator", INDICATORS, ids=NAMES)
def test_every_indicator_has_sql_test_and_fields(indicator):
    sql = (REPO / indicator.sql).read_text(encoding="utf-8")
    assert sql.startswith(f"-- {indicator.name}:")                       # the file says what it computes
    assert re.search(rf"\bAS {indicator.name}\b", sql)                    # and yields the registry's column
    assert indicator.test.split("::")[1] == f"test_{indicator.name}"
    assert f"test_{indicator.name}" in _test_functions(indicator.test)
    assert indicator.direction in (HIGHER, LOWER)
    assert indicator.name_zh and indicator.formula and indicator.unit and indicator.legal_basis
    assert all(b.startswith(("《", "地方")) for b in indicator.legal_basis)
    zh, en = indicator.reasons(1.5, 2)
    assert zh and en


@pytest.mark.parametrize("indicator", INDICATORS, ids=NAMES)
def test_default_thresholds_are_ordered_by_severity(indicator):
    cuts = [c for c in (indicator.thresholds.yellow, indicator.thresholds.orange, indicator.thresholds.red)
            if c is not None]
    assert cuts == sorted(cuts, reverse=indicator.direction == LOWER)


def test_no_sql_file_without_an_indicator():
    files = {p.stem for p in registry.SQL_DIR.glob("*.sql") if not p.stem.startswith("_")}
    assert files == set(NAMES)


def test_by_name():
    assert by_name("coverage_ratio").name_zh == "监管资金覆盖率"
    with pytest.raises(KeyError, match="unknown indicator"):
        by_name("coverage")


def test_thresholds_for_a_province_override_and_the_defaults():
    shanghai, guangdong = thresholds_for("31"), thresholds_for("44")
    assert set(shanghai) == set(NAMES)
    assert shanghai["coverage_ratio"] == Thresholds(1.0, 0.8, 0.6)         # thresholds.yaml, province 31
    assert guangdong["coverage_ratio"] == by_name("coverage_ratio").thresholds
    assert thresholds_for("11")["overdue_refunds"] == Thresholds(0, 2, 5)
    assert thresholds_for(None) == thresholds_for("44")


def test_a_partial_override_keeps_the_other_tiers(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text('provinces:\n  "44":\n    discount_depth: {red: 0.6}\n', encoding="utf-8")
    assert thresholds_for("44", path)["discount_depth"] == Thresholds(0.3, 0.4, 0.6)


@pytest.mark.parametrize("text, error", [
    ('provinces:\n  "44":\n    discount: {red: 0.6}\n', "unknown indicator"),
    ('provinces:\n  "44":\n    discount_depth: {purple: 0.6}\n', "unknown tiers"),
])
def test_a_misspelt_override_is_refused(tmp_path, text, error):
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises((KeyError, ValueError), match=error):
        thresholds_for("44", path)


def test_tiers_are_strictly_beyond_the_cut_in_the_risky_direction():
    coverage, overdue = by_name("coverage_ratio"), by_name("overdue_refunds")   # 0.9/0.7/0.5 and 0/3/10
    assert [coverage.tier(v) for v in (0.95, 0.9, 0.89, 0.7, 0.69, 0.49, None, float("nan"))] == [
        None, None, "yellow", "yellow", "orange", "red", None, None]
    assert [overdue.tier(v) for v in (0, 1, 3, 4, 11)] == [None, "yellow", "yellow", "orange", "red"]
    assert coverage.tier(0.95, Thresholds(1.0, 0.8, 0.6)) == "yellow"


def test_reason_text_names_value_and_threshold():
    assert by_name("coverage_ratio").reasons(0.4321, 0.5) == (
        "资金覆盖率 0.43 低于阈值 0.5", "coverage ratio 0.43 below 0.5")


def test_committed_doc_equals_the_registry():
    assert (REPO / registry.DOC_PATH).read_text(encoding="utf-8") == registry.markdown()
