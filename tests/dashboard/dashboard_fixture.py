"""A hand-made warehouse for the dashboard: two provinces, three counties, five warnings in 2026-W10.

Guangdong (44): 越秀 440104 has A1 (red), A2 (red), A3 (yellow); 海珠 440106 has B1 (orange).
Beijing (11): 东城 110101 has C1 (red). 2026-W09 has one earlier warning, A1 orange.
"""

from __future__ import annotations

import json
from pathlib import Path


from dashboards.scope import Scope
from pipelines.warehouse import connect, create_staging_tables

A1, A2, A3 = "91440104MA5A00001X", "91440104MA5A00002X", "91440104MA5A00003X"
B1, C1 = "91440106MA5B00001X", "91110101MA0C00001X"
REGION = {A1: ("44", "440104"), A2: ("44", "440104"), A3: ("44", "440104"), B1: ("44", "440106"),
          C1: ("11", "110101")}
NAME = {A1: "越秀启明教育", A2: "越秀星辰培训", A3: "越秀小树艺术", B1: "海珠博学教育", C1: "东城名师课堂"}

# week, institution, tier, score, rank, reasons
WARNINGS = [
    ("2026-W10", A1, "red", 0.91, 1, [{"indicator": "coverage_ratio", "rule": "threshold_red", "value": 0.35,
                                       "threshold": 0.5, "tier": "red"}]),
    ("2026-W10", A2, "red", 0.82, 2, [{"indicator": "overdue_refunds", "rule": "threshold_red", "value": 12.0,
                                       "threshold": 10.0, "tier": "red"}]),
    ("2026-W10", A3, "yellow", 0.31, 4, [{"indicator": "discount_depth", "rule": "threshold_yellow",
                                          "value": 0.42, "threshold": 0.4, "tier": "yellow"}]),
    ("2026-W10", B1, "orange", 0.55, 3, [{"indicator": "complaint_surge", "rule": "threshold_orange",
                                          "value": 3.5, "threshold": 3.0, "tier": "orange"}]),
    ("2026-W10", C1, "red", 0.95, 1, [{"indicator": "coverage_ratio", "rule": "threshold_red", "value": 0.2,
                                       "threshold": 0.5, "tier": "red"}]),
    ("2026-W09", A1, "orange", 0.61, 1, [{"indicator": "coverage_ratio", "rule": "threshold_orange",
                                          "value": 0.6, "threshold": 0.7, "tier": "orange"}]),
]
# prepaid liability and supervised balance (fen) per institution in 2026-W10
BALANCES = {A1: (1_000_000, 350_000), A2: (500_000, 400_000), A3: (200_000, 200_000), B1: (300_000, 250_000),
            C1: (800_000, 160_000)}

SCOPES = {
    "ministry": Scope("ministry"),
    "guangdong": Scope("province", "44"),
    "yuexiu": Scope("county", "44", "440104"),
    "haizhu": Scope("county", "44", "440106"),
    "beijing": Scope("province", "11"),
    "dongcheng": Scope("county", "11", "110101"),
}


def build_warehouse(path: Path) -> Path:
    con = connect(path)
    create_staging_tables(con)
    for iid, (prov, county) in REGION.items():
        con.execute("insert into staging.institutions (institution_id, record_date, event, name, province_code, "
                    "county_code, category, subject, mode, licence_no, staff_count, staff_verified, "
                    "reserve_required_fen) values (?, date '2024-03-01', 'registered', ?, ?, ?, 'academic', "
                    "'math', 'offline', 'L-1', 10, 10, 100000)", [iid, NAME[iid], prov, county])
    con.execute("""create table if not exists marts.warnings (
        week varchar, province_code varchar, county_code varchar, institution_id varchar, name varchar,
        tier varchar, score double, rank integer, reasons_zh varchar, reasons_en varchar, reasons json,
        change varchar, previous_tier varchar, score_source varchar)""")
    for week, iid, tier, score, rank, reasons in WARNINGS:
        con.execute("insert into marts.warnings values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'new', null, 'rules')",
                    [week, *REGION[iid], iid, NAME[iid], tier, score, rank, f"{tier}级:{reasons[0]['indicator']}",
                     f"{tier}: {reasons[0]['indicator']}", json.dumps(reasons)])
    con.execute("""create table if not exists marts.institution_week_indicators (
        institution_id varchar, week varchar, week_start date, week_end date, province_code varchar,
        county_code varchar, name varchar, category varchar, mode varchar, prepaid_liability_fen double,
        supervised_balance_fen double, coverage_ratio double)""")
    for iid, (liability, balance) in BALANCES.items():
        con.execute("insert into marts.institution_week_indicators values (?, '2026-W10', date '2026-03-02', "
                    "date '2026-03-08', ?, ?, ?, 'academic', 'offline', ?, ?, ?)",
                    [iid, *REGION[iid], NAME[iid], liability, balance, balance / liability])
    con.execute("""create table if not exists marts.institution_week_scores (institution_id varchar, week varchar,
        model_name varchar, model_version varchar, score double, contributions json)""")
    con.execute("insert into marts.institution_week_scores values (?, '2026-W10', 'rules', '1', 0.91, ?)",
                [A1, json.dumps([{"indicator": "coverage_ratio", "value": 0.35, "contribution": 0.4}])])
    # two paid orders in W10 (3 000 + 2 000 yuan), one refund request in W10, one complaint in W09 for A1
    con.execute("insert into staging.orders (order_id, institution_id, paid_fen, list_price_fen, class_hours, "
                "paid_at, status) values ('o1', ?, 300000, 400000, 40, timestamptz '2026-03-03 10:00:00+08', "
                "'paid'), ('o2', ?, 200000, 200000, 20, timestamptz '2026-03-04 10:00:00+08', 'paid'), "
                "('o3', ?, 999900, 999900, 20, timestamptz '2026-03-04 10:00:00+08', 'cancelled')", [A1] * 3)
    con.execute("insert into staging.refunds (refund_id, order_id, institution_id, requested_at, requested_fen, "
                "status) values ('r1', 'o1', ?, timestamptz '2026-03-05 09:00:00+08', 150000, 'requested')", [A1])
    con.execute("insert into staging.complaints (complaint_id, institution_id, received_at, category, status) "
                "values ('c1', ?, timestamptz '2026-02-25 09:00:00+08', 'refund_difficulty', 'open')", [A1])
    con.execute("create table if not exists ops.files (file_name varchar, feed varchar, sha256 varchar, delivery_date date, "
                "status varchar, reason varchar, rows_delivered bigint, rows_inserted bigint, "
                "rows_corrected bigint, rows_unchanged bigint, rows_quarantined bigint, "
                "amount_fen_delivered bigint, amount_fen_loaded bigint, amount_fen_quarantined bigint, "
                "loaded_at timestamptz)")
    con.execute("insert into ops.files (file_name, feed, status, reason, rows_delivered, rows_inserted, "
                "rows_quarantined) values ('orders_20260309.csv', 'orders', 'loaded', null, 10, 8, 2), "
                "('orders_20260302.csv', 'orders', 'loaded', null, 5, 5, 0), "
                "('account_movements_20260309_2.csv', 'account_movements', 'rejected', 'manifest sha256', 7, 0, 0)")
    con.execute("create table if not exists quarantine.rows (feed varchar, file_name varchar, row_number bigint, rule varchar, "
                "detail varchar, row_json json, quarantined_at timestamptz, released_at timestamptz)")
    con.execute("insert into quarantine.rows (feed, file_name, row_number, rule) values "
                "('orders', 'orders_20260309.csv', 3, 'paid_le_list'), "
                "('orders', 'orders_20260309.csv', 7, 'paid_le_list')")
    con.close()
    return path


