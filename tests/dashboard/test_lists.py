"""Public black and white lists from case outcomes and filings."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd

from dashboard_fixture import A1, A2, A3, B1, C1, REGION
from dashboards import cases
from dashboards.lists import PUBLIC_COLUMNS, publish_public_lists
from pipelines.warehouse import connect


def _new_case(iid: str, name: str) -> cases.NewCase:
    return cases.NewCase(iid, name, *REGION[iid], "2026-W10", "red", [])


def test_black_and_white_lists(warehouse, tmp_path):
    con = connect(warehouse)
    # B1 stopped trading without settling prepaid fees; A3's licence expired at the end of January
    con.execute("insert into staging.institutions (institution_id, record_date, event, name, province_code, "
                "county_code, closure_reason) values (?, date '2026-03-01', 'closed', '海珠博学教育', '44', "
                "'440106', 'abnormal')", [B1])
    con.execute("insert into staging.institutions (institution_id, record_date, event, name, province_code, "
                "county_code, licence_expiry) values (?, date '2025-02-01', 'licence_renewed', '越秀小树艺术', "
                "'44', '440104', date '2026-01-31')", [A3])
    con.close()
    url = f"sqlite:///{tmp_path / 'cases.sqlite'}"
    engine = cases.engine_for(url)
    late = cases.open_case(engine, _new_case(A1, "越秀启明教育"), "yuexiu", date(2026, 3, 9), lambda s, y: f"N{s}")
    cases.open_case(engine, _new_case(A2, "越秀星辰培训"), "yuexiu", date(2026, 3, 9), lambda s, y: f"N{s}")
    cases.mark_overdue(engine, date(2026, 3, 31))
    cases.transition(engine, late["case_id"], "escalated", "yuexiu")
    cases.transition(engine, 2, "responded", "yuexiu")  # A2 answered but its case is still open

    result = publish_public_lists(url, warehouse, tmp_path / "out", as_of=date(2026, 4, 1))

    black = pd.read_csv(result["blacklist"]["csv"], dtype=str)
    white = pd.read_csv(result["whitelist"]["csv"], dtype=str)
    assert list(black.columns) == PUBLIC_COLUMNS and list(white.columns) == PUBLIC_COLUMNS
    assert sorted(black["institution_id"]) == sorted([A1, B1])
    assert black.set_index("institution_id").loc[A1, "basis"] == "N1"
    assert white["institution_id"].tolist() == [C1]  # A2 open case, A3 licence expired
    published = json.loads(result["whitelist"]["json"].read_text(encoding="utf-8"))
    assert published["as_of"] == "2026-04-01" and published["entries"][0]["name"] == "东城名师课堂"
    text = result["blacklist"]["csv"].read_text(encoding="utf-8-sig") + result["blacklist"]["json"].read_text()
    assert "pseudonym" not in text and "phone" not in text


def test_before_the_closure_b1_is_still_white(warehouse, tmp_path):
    result = publish_public_lists(None, warehouse, tmp_path / "out", as_of=date(2026, 2, 1))
    assert result["blacklist"]["rows"] == 0
    white = pd.read_csv(result["whitelist"]["csv"], dtype=str)
    assert sorted(white["institution_id"]) == sorted([A1, A2, A3, B1, C1])
    assert (tmp_path / "out" / "cases.sqlite").exists()
