"""Issuing notices: scope and role checks, numbered HTML/PDF with embedded CJK fonts, sha256 on the case."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from pypdf import PdfReader

from dashboard_fixture import A1, A2, B1, SCOPES
from dashboards import cases, data
from dashboards.issue import NotAllowed, issue_notices


def _issue(warehouse, tmp_path, who, keys):
    engine = cases.engine_for(f"sqlite:///{tmp_path / 'cases.sqlite'}")
    with data.reader(warehouse) as con:
        return engine, issue_notices(con, engine, SCOPES[who], who, keys, tmp_path / "out", date(2026, 3, 9))


def test_county_official_issues_two_numbered_notices(warehouse, tmp_path):
    engine, issued = _issue(warehouse, tmp_path, "yuexiu", [("2026-W10", A1), ("2026-W10", A2)])
    assert [c["notice_no"] for c in issued] == ["〔2026〕粤440104教监整字第0001号", "〔2026〕粤440104教监整字第0002号"]
    assert {c["deadline"] for c in issued} == {date(2026, 3, 30)}
    first = issued[0]
    pdf = (tmp_path / "out" / "notices" / "case-000001.pdf")
    assert first["notice_pdf"] == str(pdf)
    assert first["notice_sha256"] == hashlib.sha256(pdf.read_bytes()).hexdigest()
    page = (tmp_path / "out" / "notices" / "case-000001.html").read_text(encoding="utf-8")
    assert "越秀启明教育" in page and "监管资金覆盖率" in page and "0.35" in page and "0.50" in page
    assert "2026年03月30日" in page and "教监管厅函〔2021〕6号" in page and "红色预警" in page
    reader = PdfReader(pdf)
    text = reader.pages[0].extract_text()
    assert "整改通知书" in text and "越秀启明教育" in text
    fonts = [f.get_object() for p in reader.pages for f in p["/Resources"]["/Font"].values()]
    cjk = [f for f in fonts if "CJK" in str(f["/BaseFont"]) and "Noto" in str(f["/BaseFont"])]
    assert cjk
    for font in cjk:  # embedded (a font file in the descriptor), not only referenced by name
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
        assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor)
    assert [a["action"] for a in cases.audit_rows(engine, first["case_id"])] == ["issue", "attach_notice"]


@pytest.mark.parametrize(("who", "keys"), [("haizhu", [("2026-W10", A1)]),  # another county's row
                                          ("guangdong", [("2026-W10", A1)]),  # province officials don't issue
                                          ("yuexiu", [("2026-W10", A1), ("2026-W10", B1)])])  # one out of scope
def test_issuing_refused_outside_role_or_scope(warehouse, tmp_path, who, keys):
    with pytest.raises(NotAllowed):
        _issue(warehouse, tmp_path, who, keys)
    engine = cases.engine_for(f"sqlite:///{tmp_path / 'cases.sqlite'}")
    assert cases.list_cases(engine) == [] and cases.audit_rows(engine) == []


def test_findings_keep_breached_thresholds_most_severe_first():
    from dashboards.issue import findings
    reasons = [
        {"indicator": "orders_feed_silence_weeks", "rule": "orders_feed_silent", "value": 38.0, "threshold": 4.0,
         "tier": "orange"},
        {"indicator": "orders_feed_silence_weeks", "rule": "threshold_red", "value": 38.0, "threshold": 8.0,
         "tier": "red"},
        {"indicator": "staff_unverified_share", "rule": "threshold_orange", "value": 0.375, "threshold": 0.2,
         "tier": "orange"},
        {"indicator": "orders_feed_silence_weeks", "rule": "model_contribution", "value": 38.0, "threshold": None,
         "tier": None, "contribution": 4.0},
    ]
    assert [(f["indicator"], f["rule"]) for f in findings(reasons)] == [
        ("orders_feed_silence_weeks", "threshold_red"), ("staff_unverified_share", "threshold_orange")]


def test_the_same_warning_is_not_notified_twice_while_its_case_is_open(warehouse, tmp_path):
    engine, issued = _issue(warehouse, tmp_path, "yuexiu", [("2026-W10", A1)])
    with pytest.raises(NotAllowed, match="第0001号"):
        _issue(warehouse, tmp_path, "yuexiu", [("2026-W10", A2), ("2026-W10", A1)])
    assert len(cases.list_cases(engine)) == 1  # A2 was not issued either: the selection is refused whole
    for status in ("responded", "rectified", "closed"):
        cases.transition(engine, issued[0]["case_id"], status, "yuexiu")
    _, again = _issue(warehouse, tmp_path, "yuexiu", [("2026-W10", A1)])
    assert again[0]["notice_no"] == "〔2026〕粤440104教监整字第0002号"
