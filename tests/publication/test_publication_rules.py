"""Rules, tiers, reasons and week-on-week changes on hand-made indicator rows (expectations by hand)."""

from __future__ import annotations

import json
import math

import pytest
from publication_fixtures import add_rows

from indicators.rules import build_warnings, rule_score

A, B, C, D, E = ("91440104MA5AAAAA1A", "91440104MA5BBBBB1B", "91440104MA5CCCCC1C", "91310104MA5DDDDD1D",
                 "91440104MA5EEEEE1E")


def listed(con, week):
    rows = con.execute("select institution_id, tier, score, rank, change, previous_tier, reasons_zh, reasons_en, "
                       "reasons from marts.warnings where week = ? order by rank", [week]).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_rule_score_is_the_documented_logistic():
    assert rule_score(6) == pytest.approx(0.5)
    assert rule_score(0) == pytest.approx(1 / (1 + math.exp(6)))


def test_hard_rules_thresholds_and_score_give_the_tier(warehouse):
    add_rows(warehouse, [
        # points = tier points (yellow 0.5, orange 1.5, red 3) x rule weight (money at risk 3, other 0.5)
        # coverage 0.6: hard red (< 0.9) 9 + registry orange (< 0.7) 4.5 = 13.5 points; tier red (hard rule)
        dict(institution_id=A, week="2026-W10", province_code="44", coverage_ratio=0.6),
        # one overdue refund: hard orange 4.5 + yellow threshold (> 0) 1.5 = 6 points; tier orange (hard rule)
        dict(institution_id=B, week="2026-W10", province_code="44", overdue_refunds=1),
        # discount depth 0.35: yellow only, 1.5 points, not listed
        dict(institution_id=C, week="2026-W10", province_code="44", discount_depth=0.35, coverage_ratio=1.2),
        # Shanghai's coverage override (yellow below 1.0) adds the 1.5 that crosses 6 points: discount 0.45
        # orange 4.5, sales spike 4 orange 0.75, one over-cap order yellow 0.25, unverified staff yellow 0.25
        # = 5.75, with coverage 7.25 points: orange (7 points and more)
        dict(institution_id=D, week="2026-W10", province_code="31", coverage_ratio=0.95, discount_depth=0.45,
             sales_spike_ratio=4.0, over_cap_orders_4w=1, staff_unverified_share=0.1),
        # the same values in Guangdong (no override, coverage 0.95 is fine): 5.75 points, not listed
        dict(institution_id=E, week="2026-W10", province_code="44", coverage_ratio=0.95, discount_depth=0.45,
             sales_spike_ratio=4.0, over_cap_orders_4w=1, staff_unverified_share=0.1),
    ])
    assert build_warnings(warehouse) == 3
    rows = listed(warehouse, "2026-W10")
    assert set(rows) == {A, B, D}
    assert rows[A][:3] == ("red", pytest.approx(1 / (1 + math.exp(-7.5))), 1)
    assert rows[B][:3] == ("orange", pytest.approx(0.5), 2)
    assert rows[D][:3] == ("orange", pytest.approx(1 / (1 + math.exp(-1.25))), 1)  # rank 1 in province 31
    assert "资金覆盖率 0.95" in rows[D][5]


def test_reasons_carry_values_and_thresholds(warehouse):
    add_rows(warehouse, [dict(institution_id=A, week="2026-W10", province_code="44", coverage_ratio=0.6),
                         dict(institution_id=B, week="2026-W10", province_code="44", overdue_refunds=1)])
    build_warnings(warehouse)
    rows = listed(warehouse, "2026-W10")
    zh, en, items = rows[A][5], rows[A][6], json.loads(rows[A][7])
    assert "硬性规则" in zh and "0.60" in zh and "0.9" in zh and "规则评分" in zh
    assert "hard rule" in en and "0.60" in en
    by_rule = {i["rule"]: i for i in items}
    assert by_rule["coverage_below_90pct"] == dict(indicator="coverage_ratio", rule="coverage_below_90pct",
                                                   value=0.6, threshold=0.9, tier="red")
    assert by_rule["threshold_orange"]["threshold"] == 0.7
    # the overdue-refund template has no threshold of its own: the rule appends it
    assert "(阈值 >0)" in rows[B][5]


def test_model_score_replaces_the_rule_score_and_names_contributions(warehouse):
    add_rows(warehouse, [dict(institution_id=A, week="2026-W10", province_code="44", coverage_ratio=0.95),
                         dict(institution_id=B, week="2026-W10", province_code="44", overdue_refunds=1)])
    warehouse.execute("create table marts.institution_week_scores (institution_id varchar, week varchar, "
                      "model_name varchar, model_version varchar, score double, contributions json)")
    contributions = json.dumps([{"indicator": "sales_spike_ratio", "value": 4.0, "contribution": 0.2},
                                {"indicator": "coverage_ratio", "value": 0.95, "contribution": -0.1}])
    warehouse.execute("insert into marts.institution_week_scores values (?, '2026-W10', 'gbm', 'v1', 0.3, ?), "
                      "(?, '2026-W10', 'gbm', 'v1', 0.01, '[]')", [A, contributions, B])
    build_warnings(warehouse)
    rows = listed(warehouse, "2026-W10")
    # A: no rule flag, model 0.3 >= orange cut-off 0.25; B: model 0.01 but the hard rule keeps it orange
    assert rows[A][:2] == ("orange", 0.3)
    assert "模型评分 0.30" in rows[A][5] and "周销售额突增倍数 4(+0.20)" in rows[A][5]
    assert "预收费" not in rows[A][5] and "覆盖率 0.95" not in rows[A][5]  # negative contributions are not reasons
    assert rows[B][:2] == ("orange", 0.01)
    assert [r for r in rows] == [A, B]


def test_change_against_the_previous_week_and_drops(warehouse):
    add_rows(warehouse, [
        dict(institution_id=A, week="2026-W09", province_code="44", overdue_refunds=1),   # orange
        dict(institution_id=A, week="2026-W10", province_code="44", coverage_ratio=0.6),  # red: tier_up
        dict(institution_id=B, week="2026-W09", province_code="44", coverage_ratio=0.6),  # red
        dict(institution_id=B, week="2026-W10", province_code="44", overdue_refunds=1),   # orange: tier_down
        dict(institution_id=C, week="2026-W09", province_code="44", overdue_refunds=1),   # orange
        dict(institution_id=C, week="2026-W10", province_code="44", overdue_refunds=0),   # dropped, still active
        dict(institution_id=D, week="2026-W09", province_code="31", overdue_refunds=1),   # orange, closed after
        dict(institution_id=E, week="2026-W10", province_code="44", licence_days_to_expiry=-3),  # new, red
    ])
    build_warnings(warehouse)
    rows = listed(warehouse, "2026-W10")
    assert {k: (v[3], v[4]) for k, v in rows.items()} == {
        A: ("tier_up", "orange"), B: ("tier_down", "red"), E: ("new", None)}
    drops = warehouse.execute("select institution_id, previous_week, previous_tier, still_active "
                              "from marts.warning_drops where week = '2026-W10' order by 1").fetchall()
    assert drops == [(D, "2026-W09", "orange", False), (C, "2026-W09", "orange", True)]


def test_rebuilding_one_week_keeps_the_others(warehouse):
    add_rows(warehouse, [dict(institution_id=A, week="2026-W09", province_code="44", overdue_refunds=1),
                         dict(institution_id=A, week="2026-W10", province_code="44", overdue_refunds=1)])
    build_warnings(warehouse)
    warehouse.execute("update marts.institution_week_indicators set coverage_ratio = 0.1 where week = '2026-W10'")
    assert build_warnings(warehouse, weeks=["2026-W10"]) == 1
    assert listed(warehouse, "2026-W09")[A][0] == "orange"
    assert listed(warehouse, "2026-W10")[A][:1] + listed(warehouse, "2026-W10")[A][3:5] == ("red", "tier_up", "orange")


def test_the_models_rule_score_fallback_counts_as_the_rule_score(warehouse):
    add_rows(warehouse, [dict(institution_id=A, week="2026-W10", province_code="44", sales_spike_ratio=6.0,
                              discount_depth=0.45)])
    warehouse.execute("create table marts.institution_week_scores (institution_id varchar, week varchar, "
                      "model_name varchar, model_version varchar, score double, contributions json)")
    # 0.5 would be red under the model cut-offs; as the rule score (an orange money flag 4.5 + a red
    # sales spike 1.5 = 6 points) it is yellow
    warehouse.execute("insert into marts.institution_week_scores values (?, '2026-W10', 'rule_score', 'rules', "
                      "0.5, '[]')", [A])
    build_warnings(warehouse)
    row = warehouse.execute("select tier, score_source from marts.warnings").fetchall()
    assert row == [("yellow", "rules")]


def test_a_quiet_week_lists_nobody_and_drops_last_weeks_rows(warehouse):
    add_rows(warehouse, [dict(institution_id=A, week="2026-W09", province_code="44", overdue_refunds=1),
                         dict(institution_id=A, week="2026-W10", province_code="44", coverage_ratio=1.2)])
    assert build_warnings(warehouse, weeks=["2026-W10"]) == 0
    assert build_warnings(warehouse) == 1
    assert warehouse.execute("select week, institution_id, still_active from marts.warning_drops").fetchall() == [
        ("2026-W10", A, True)]
