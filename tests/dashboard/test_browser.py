"""The dashboard in headless Debian chromium: a county official issues two notices; another province's
official can neither see nor fetch those rows or cases, through the pages, the download routes or the
Dash callback endpoint."""

from __future__ import annotations

import socket
import threading
from datetime import date
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from dashboard_fixture import A1, A2, C1, SCOPES, build_warehouse
from dashboards import cases, data
from dashboards.app import create_app
from dashboards.issue import issue_notices

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", "--window-size=1400,1000")
TODAY = date(2026, 3, 9)  # a Monday: 15 working days later is Monday 2026-03-30


@pytest.fixture
def site(tmp_path):
    """The app on a free loopback port, with its own warehouse, case database and notices folder."""
    warehouse = build_warehouse(tmp_path / "warehouse.duckdb")
    out = tmp_path / "out"
    app = create_app(warehouse, out, today=lambda: TODAY, secret_key="test-secret")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{port}", "warehouse": warehouse, "out": out}
    server.shutdown()


@pytest.fixture
def browser():
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed (make system-deps)")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService("/usr/bin/chromedriver"))
    yield driver
    driver.quit()


def _login(driver, base: str, username: str) -> None:
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(f"{username}-demo")
    driver.find_element(By.ID, "login").click()
    _wait(driver, "whoami")


def _wait(driver, element_id: str, timeout: float = 20):
    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.ID, element_id)))


def _shot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def _grid_rows(driver, expected: int) -> list:
    WebDriverWait(driver, 20).until(lambda d: len(d.find_elements(
        By.CSS_SELECTOR, ".ag-center-cols-container .ag-row[row-id]")) == expected)
    return driver.find_elements(By.CSS_SELECTOR, ".ag-center-cols-container .ag-row[row-id]")


def test_county_official_issues_two_notices_and_sees_the_cases(site, browser):
    base = site["url"]
    _login(browser, base, "yuexiu")
    _wait(browser, "overview-tiers")
    _shot(browser, "overview")
    browser.get(f"{base}/province")
    rows = _grid_rows(browser, 3)  # 越秀's three warnings of 2026-W10
    assert sorted(r.get_attribute("row-id") for r in rows) == sorted(f"2026-W10|{i}" for i in (A1, A2, A3_ID))
    for institution in (A1, A2):
        box = browser.find_element(By.CSS_SELECTOR, f'.ag-row[row-id="2026-W10|{institution}"] input[type=checkbox]')
        browser.execute_script("arguments[0].click()", box)
    browser.find_element(By.ID, "issue-btn").click()
    issued = WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#issued-list li"))
    texts = sorted(li.text for li in issued)
    assert len(texts) == 2
    assert all("2026-03-30" in t for t in texts)
    assert any("〔2026〕粤440104教监整字第0001号" in t for t in texts)
    _shot(browser, "province-issued")

    browser.get(f"{base}/cases")
    table = _wait(browser, "cases-table")
    body = table.text
    assert "越秀启明教育" in body and "越秀星辰培训" in body and body.count("2026-03-30") == 2
    assert "第0002号" in body and "已下发" in body
    _shot(browser, "cases")

    browser.get(f"{base}/institution/{A1}")
    assert "越秀启明教育" in _wait(browser, "institution-title").text
    assert "第0001号" in _wait(browser, "institution-cases").text
    _wait(browser, "institution-timeline")
    _shot(browser, "institution")

    browser.get(f"{base}/quality")
    assert "paid_le_list" in _wait(browser, "dq-quarantine").text
    _shot(browser, "quality")

    # the PDF of the notice is served to its county
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    pdf = requests.get(f"{base}/notices/1.pdf", cookies=cookies, timeout=10)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


A3_ID = "91440104MA5A00003X"


def _session(base: str, username: str) -> requests.Session:
    session = requests.Session()
    reply = session.post(f"{base}/login", data={"username": username, "password": f"{username}-demo"},
                         allow_redirects=False, timeout=10)
    assert reply.status_code == 302
    return session


def _callback(session: requests.Session, base: str, outputs: list[str], inputs: list,
              state: list) -> requests.Response:
    """Call a Dash callback directly, as a hostile client would, bypassing the page."""
    specs = [dict(zip(("id", "property"), o.split("."))) for o in outputs]
    return session.post(f"{base}/_dash-update-component", timeout=30, json={
        "output": outputs[0] if len(outputs) == 1 else "".join(f"..{o}.." for o in outputs).replace("....", "..."),
        "outputs": specs[0] if len(specs) == 1 else specs,
        "inputs": inputs, "state": state, "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]})


def test_other_province_sees_and_fetches_nothing_of_yuexiu(site, browser):
    base = site["url"]
    engine = cases.engine_for(cases.default_url(site["out"]))
    with data.reader(site["warehouse"]) as con:
        issued = issue_notices(con, engine, SCOPES["yuexiu"], "yuexiu", [("2026-W10", A1), ("2026-W10", A2)],
                               site["out"], TODAY)
    assert [c["case_id"] for c in issued] == [1, 2]

    _login(browser, base, "beijing")
    browser.get(f"{base}/province")
    assert [r.get_attribute("row-id") for r in _grid_rows(browser, 1)] == [f"2026-W10|{C1}"]
    _shot(browser, "province-beijing")
    browser.get(f"{base}/cases")
    assert "暂无案件" in _wait(browser, "cases-table").text
    browser.get(f"{base}/institution/{A1}")
    _wait(browser, "not-in-scope")

    for who in ("beijing", "dongcheng"):
        session = _session(base, who)
        for path in ("/notices/1.pdf", "/notices/2.html"):
            assert session.get(f"{base}{path}", timeout=10).status_code == 404
        csv = session.get(f"{base}/download/warnings.csv", timeout=10)
        assert csv.status_code == 200 and C1 in csv.text and A1 not in csv.text and A2 not in csv.text
        forged = session.get(f"{base}/download/warnings.csv", params={
            "filter": '{"county_code": {"filterType": "text", "type": "equals", "filter": "440104"}}'}, timeout=10)
        assert forged.status_code == 200 and A1 not in forged.text
        grid = _callback(session, base, ["warnings-grid.getRowsResponse"],
                         [{"id": "warnings-grid", "property": "getRowsRequest",
                           "value": {"startRow": 0, "endRow": 100, "filterModel": {}, "sortModel": []}}],
                         [{"id": "grid-week", "property": "data", "value": None}])
        assert grid.status_code == 200
        ids = [r["institution_id"] for r in grid.json()["response"]["warnings-grid"]["getRowsResponse"]["rowData"]]
        assert ids == [C1]
        page = _callback(session, base, ["header.children", "page.children"],
                         [{"id": "url", "property": "pathname", "value": f"/institution/{A1}"},
                          {"id": "url", "property": "search", "value": ""}], [])
        assert page.status_code == 200
        assert "越秀启明教育" not in page.text and "not-in-scope" in page.text
        link = _callback(session, base, ["csv-link.href"],
                         [{"id": "warnings-grid", "property": "filterModel",
                           "value": {"tier": {"filterType": "text", "type": "equals", "filter": "red"}}}],
                         [{"id": "grid-week", "property": "data", "value": "2026-W10"}])
        href = link.json()["response"]["csv-link"]["href"]
        filtered = session.get(f"{base}{href}", timeout=10).text
        assert C1 in filtered and A1 not in filtered and len(filtered.strip().splitlines()) == 2
        forged_issue = _callback(session, base, ["issue-result.children"],
                                 [{"id": "issue-btn", "property": "n_clicks", "value": 1}],
                                 [{"id": "warnings-grid", "property": "selectedRows",
                                   "value": [{"week": "2026-W10", "institution_id": A1}]}])
        assert forged_issue.status_code == 200 and "not allowed" in forged_issue.text
    assert len(cases.list_cases(engine)) == 2  # nothing was issued by the forged callbacks

    def update(who: str, status: str) -> str:
        reply = _callback(_session(base, who), base, ["case-result.children"],
                          [{"id": "case-update", "property": "n_clicks", "value": 1}],
                          [{"id": "case-id", "property": "value", "value": 1},
                           {"id": "case-status", "property": "value", "value": status}])
        assert reply.status_code == 200
        return reply.json()["response"]["case-result"]["children"]

    assert "not allowed" in update("dongcheng", "responded")
    assert "not allowed" in update("haizhu", "responded")  # same province, other county
    assert "refused" in update("yuexiu", "closed")  # issued cannot jump to closed
    assert "(responded)" in update("yuexiu", "responded")
    assert [a["actor"] for a in cases.audit_rows(engine, 1)] == ["yuexiu", "yuexiu", "yuexiu"]

    anonymous = requests.get(f"{base}/download/warnings.csv", timeout=10)
    assert anonymous.status_code == 401
