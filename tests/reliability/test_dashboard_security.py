"""The dashboard refuses on the server what a user may not do, whatever the browser sends: each request
here is what a logged-in user's browser (or a user replaying requests by hand) posts to the Dash callback
endpoint or the download routes. Complements tests/dashboard (query-level scope, library-level refusals).

Warehouse: tests/dashboard/dashboard_fixture.py — 越秀 440104 has A1, A2, A3; 海珠 440106 has B1; 东城 110101
(Beijing) has C1; week 2026-W10.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from dashboard_fixture import A1, A2, A3, B1, C1, SCOPES
from dashboards import cases, data
from pipelines.warehouse import connect
from reliability_helpers import answer, callback, logged_in

WEEK = "2026-W10"
HOSTILE = ["' OR '1'='1", "x'); DROP TABLE marts.warnings; --", '" OR ""="', "%", "_", "\\", "'; --",
           "<script>alert(1)</script>", "越秀' UNION SELECT * FROM marts.warnings --", "440104' OR county_code <> '"]


def issue(client, *institutions: str):
    """Press the issue button with these rows 'selected' (forged name and tier, as a tampering browser would)."""
    rows = [{"week": WEEK, "institution_id": i, "name": "伪造名称", "tier": "red"} for i in institutions]
    return answer(callback(client, [("issue-result", "children")], [("issue-btn", "n_clicks", 1)],
                           [("warnings-grid", "selectedRows", rows)]), "issue-result", "children")


def update_case(client, case_id: int, status: str):
    return answer(callback(client, [("case-result", "children")], [("case-update", "n_clicks", 1)],
                           [("case-id", "value", case_id), ("case-status", "value", status)]),
                  "case-result", "children")


def grid(client, filter_model: dict | None = None, week: str | None = WEEK) -> dict:
    request = {"startRow": 0, "endRow": 100, "filterModel": filter_model or {}, "sortModel": []}
    return answer(callback(client, [("warnings-grid", "getRowsResponse")],
                           [("warnings-grid", "getRowsRequest", request)], [("grid-week", "data", week)]),
                  "warnings-grid", "getRowsResponse")


def grid_ids(response: dict) -> list[str]:
    return sorted(r["institution_id"] for r in response["rowData"])


def all_cases(tmp_path) -> list[dict]:
    return cases.list_cases(cases.engine_for(f"sqlite:///{tmp_path / 'cases.sqlite'}"))


def test_anonymous_requests_get_nothing(dashboard):
    client = dashboard.server.test_client()
    assert callback(client, [("warnings-grid", "getRowsResponse")],
                    [("warnings-grid", "getRowsRequest", {"startRow": 0, "endRow": 100})]).status_code == 401
    assert client.get(f"/download/warnings.csv?week={WEEK}").status_code == 401
    assert client.get("/notices/1.pdf").status_code == 302  # to the login page


@pytest.mark.parametrize("who", ["analyst", "guangdong", "beijing", "haizhu", "dongcheng"])
def test_notice_issuance_refused_to_everyone_but_the_institutions_county(dashboard, tmp_path, who):
    assert issue(logged_in(dashboard, who), A1).startswith("无权下发")
    assert all_cases(tmp_path) == []


def test_county_official_issues_and_others_can_neither_update_nor_download_the_case(dashboard, tmp_path):
    yuexiu = logged_in(dashboard, "yuexiu")
    assert issue(yuexiu, A1, B1).startswith("无权下发")  # one row of another county: the selection is refused whole
    assert all_cases(tmp_path) == []
    issued = json.dumps(issue(yuexiu, A1), ensure_ascii=False)
    assert "〔2026〕粤440104教监整字第0001号" in issued
    [case] = all_cases(tmp_path)
    assert (case["institution_name"], case["tier"]) == ("越秀启明教育", "red")  # from the warehouse, not the browser

    assert update_case(logged_in(dashboard, "haizhu"), case["case_id"], "responded") == "无权操作 / not allowed"
    assert update_case(logged_in(dashboard, "guangdong"), case["case_id"], "responded").startswith("请选择")
    assert [r["action"] for r in cases.audit_rows(cases.engine_for(f"sqlite:///{tmp_path / 'cases.sqlite'}"))] == [
        "issue", "attach_notice"]

    pdf = f"/notices/{case['case_id']}.pdf"
    assert yuexiu.get(pdf).status_code == 200
    assert logged_in(dashboard, "guangdong").get(pdf).status_code == 200  # the province oversees its counties
    for who in ("haizhu", "beijing", "dongcheng"):
        assert logged_in(dashboard, who).get(pdf).status_code == 404, who


def test_grid_download_and_institution_page_refuse_other_provinces(dashboard):
    beijing = logged_in(dashboard, "beijing")
    assert grid_ids(grid(beijing)) == [C1]
    asking_for_44 = {"province_code": {"filterType": "text", "type": "equals", "filter": "44"}}
    assert grid(beijing, asking_for_44) == {"rowData": [], "rowCount": 0}
    assert grid(beijing, week=f"{WEEK}' OR '1'='1") == {"rowData": [], "rowCount": 0}

    text = beijing.get("/download/warnings.csv", query_string={"week": WEEK, "filter": json.dumps(asking_for_44)})
    assert text.status_code == 200
    assert list(csv.reader(io.StringIO(text.get_data(as_text=True).lstrip("\ufeff")))) == [list(data.GRID_COLUMNS)]
    hostile_column = {"1=1) or (true": {"type": "equals", "filter": "x"}}
    assert beijing.get("/download/warnings.csv", query_string={"filter": json.dumps(hostile_column)}).status_code == 400

    page = callback(beijing, [("header", "children"), ("page", "children")],
                    [("url", "pathname", f"/institution/{A1}"), ("url", "search", "")])
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "not-in-scope" in body and "越秀启明教育" not in body


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_filter_strings_are_values_through_every_filter(tmp_path, hostile):
    """Every grid column × every text filter, on a writable connection: a string that became SQL could
    widen the scope or drop the table; each one must stay a value and keep the county's rows only."""
    from dashboard_fixture import build_warehouse

    yuexiu = SCOPES["yuexiu"]
    with connect(build_warehouse(tmp_path / "warehouse.duckdb")) as con:
        for column in data.GRID_COLUMNS:
            for kind in data.TEXT_FILTERS:
                rows, total = data.warnings_page(con, yuexiu, None, 0, 100,
                                                 {column: {"filterType": "text", "type": kind, "filter": hostile}})
                assert {r["county_code"] for r in rows} <= {"440104"} and total == len(rows), (column, kind)
            with pytest.raises(ValueError):  # a number filter takes numbers only
                data.warnings_page(con, yuexiu, None, 0, 100,
                                   {column: {"filterType": "number", "type": "equals", "filter": hostile}})
        assert con.execute("select count(*) from marts.warnings").fetchone()[0] == 6
        # the filters do filter: a plain value still finds its rows
        rows, _ = data.warnings_page(con, yuexiu, WEEK, 0, 100, {"name": {"type": "contains", "filter": "越秀"}})
        assert sorted(r["institution_id"] for r in rows) == sorted([A1, A2, A3])


def test_hostile_filter_strings_over_http_return_only_the_users_rows(dashboard):
    haizhu = logged_in(dashboard, "haizhu")
    for hostile in HOSTILE:
        for column in ("name", "county_code", "institution_id"):
            response = grid(haizhu, {column: {"filterType": "text", "type": "notContains", "filter": hostile}})
            assert set(grid_ids(response)) <= {B1}, (hostile, column)
        sort = callback(haizhu, [("warnings-grid", "getRowsResponse")],
                        [("warnings-grid", "getRowsRequest", {"startRow": 0, "endRow": 100,
                                                             "sortModel": [{"colId": hostile, "sort": "asc"}]})],
                        [("grid-week", "data", WEEK)])
        assert answer(sort, "warnings-grid", "getRowsResponse") == {"rowData": [], "rowCount": 0}
