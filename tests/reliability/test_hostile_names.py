"""A hostile institution name — a spreadsheet formula, an SQL fragment and a script tag at once — travels
from a filing through `tutorwatch run` into the warehouse, the published lists, the reports, the dashboard
and a rectification notice, always as a value: nothing executes it, nothing is dropped, it is shown as
delivered (escaped where the output is HTML).
"""

from __future__ import annotations

import csv
from datetime import date
from html import escape

import pytest
from openpyxl import load_workbook
from selenium.webdriver.common.by import By

from dashboards import cases, data
from dashboards.app import create_app
from dashboards.issue import issue_notices
from dashboards.scope import Scope
from pipelines.warehouse import connect
from reliability_helpers import HOSTILE_NAME, RISKY, answer, callback, logged_in, served
from test_browser import _grid_rows, _login, browser  # noqa: F401  (browser is a fixture)

WEEK = "2026-W03"
MARKUP = ("<script>alert(1)</script>", '<img src=x onerror="window.pwned=1">')


def list_rows(path) -> dict[str, dict]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return {r["institution_id"]: r for r in csv.DictReader(fh)}


def test_the_name_is_stored_and_published_verbatim_and_no_sql_ran(reference_root):
    out = reference_root / "out"
    with connect(out / "warehouse.duckdb", read_only=True) as con:
        assert con.execute("select count(*) from staging.orders").fetchone()[0] == 10  # as in the fixture
        names = con.execute("select distinct name from staging.institutions where institution_id = ?",
                            [RISKY]).fetchall()
    assert names == [(HOSTILE_NAME,)]
    for name in ("11.csv", "all.csv"):
        assert list_rows(out / "warnings" / WEEK / name)[RISKY]["name"] == HOSTILE_NAME


def test_reports_escape_the_name(reference_root):
    for name in ("11.html", "national.html"):
        page = (reference_root / "out" / "reports" / WEEK / name).read_text(encoding="utf-8")
        for markup in MARKUP:
            assert markup not in page and escape(markup) in page


def test_the_workbook_holds_the_name_as_text_not_a_formula(reference_root):
    sheet = load_workbook(reference_root / "out" / "warnings" / WEEK / "11.xlsx").active
    header = [c.value for c in sheet[1]]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[header.index("统一社会信用代码")].value == RISKY)
    cell = row[header.index("机构名称")]
    assert (cell.value, cell.data_type) == (HOSTILE_NAME, "s")


def test_dashboard_serves_the_name_as_data(reference_root, tmp_path):
    app = create_app(reference_root / "out" / "warehouse.duckdb", tmp_path / "out",
                     f"sqlite:///{tmp_path / 'cases.sqlite'}", secret_key="test-secret")
    client = logged_in(app, "beijing")
    request = {"startRow": 0, "endRow": 100, "filterModel": {"name": {"type": "contains", "filter": "DROP TABLE"}}}
    rows = answer(callback(client, [("warnings-grid", "getRowsResponse")],
                           [("warnings-grid", "getRowsRequest", request)], [("grid-week", "data", WEEK)]),
                  "warnings-grid", "getRowsResponse")["rowData"]
    assert [(r["institution_id"], r["name"]) for r in rows] == [(RISKY, f"[{HOSTILE_NAME}](/institution/{RISKY})")]
    with data.reader(reference_root / "out" / "warehouse.duckdb") as con:
        export = data.warnings_csv(con, Scope("province", "11"), WEEK)
    assert HOSTILE_NAME.replace('"', '""') in export


def test_the_notice_escapes_the_name(reference_root, tmp_path):
    engine = cases.engine_for(f"sqlite:///{tmp_path / 'cases.sqlite'}")
    with data.reader(reference_root / "out" / "warehouse.duckdb") as con:
        [case] = issue_notices(con, engine, Scope("county", "11", "110105"), "chaoyang", [(WEEK, RISKY)],
                               tmp_path / "out", date(2026, 1, 20))
    page = (tmp_path / "out" / "notices" / f"case-{case['case_id']:06d}.html").read_text(encoding="utf-8")
    assert case["institution_name"] == HOSTILE_NAME
    for markup in MARKUP:
        assert markup not in page and escape(markup) in page


@pytest.mark.browser
def test_the_grid_shows_the_name_as_text_in_chromium(reference_root, tmp_path, browser):
    """The grid renders names through a markdown cell renderer: the markup must arrive as text."""
    app = create_app(reference_root / "out" / "warehouse.duckdb", tmp_path / "out",
                     f"sqlite:///{tmp_path / 'cases.sqlite'}", secret_key="test-secret")
    with served(app) as url:
        _login(browser, url, "beijing")
        browser.get(f"{url}/province?week={WEEK}")
        [row] = _grid_rows(browser, 1)
        cell = row.find_element(By.CSS_SELECTOR, '[col-id="name"]')
        assert "DROP TABLE staging.orders" in cell.text and "<script>" in cell.text
        assert cell.find_elements(By.CSS_SELECTOR, "script, img") == []
        assert browser.execute_script("return window.pwned === undefined")
