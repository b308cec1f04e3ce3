"""A bounded load test on loopback: gunicorn serving `dashboards.wsgi:server` over the dashboard tests'
hand-made warehouse, 20 users logged in concurrently (each thread its own session), each fetching its
warning list 10 times through the grid's callback. No errors, every user sees exactly its own rows, and
the latencies (p50/p95/max) are printed and written to test-output/load.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from dashboard_fixture import A1, A2, A3, B1, C1, build_warehouse
from reliability_helpers import free_port

USERS = 20
FETCHES = 10  # per user: 200 list fetches in all, plus 20 logins
# who sees what in 2026-W10 (dashboard_fixture.py)
VISIBLE = {"analyst": {A1, A2, A3, B1, C1}, "guangdong": {A1, A2, A3, B1}, "beijing": {C1},
           "yuexiu": {A1, A2, A3}, "haizhu": {B1}, "dongcheng": {C1}}
GUNICORN = ["-w", "2", "--threads", "8", "-k", "gthread", "--timeout", "60"]
REPORT = Path(__file__).resolve().parents[2] / "test-output" / "load.md"


@contextmanager
def serve(tmp_path: Path) -> Iterator[str]:
    """gunicorn on a free loopback port until the block ends; yields its URL. Its log goes to a file, not
    to a pipe nobody reads (a full pipe would block the server)."""
    port = free_port()
    env = {**os.environ, "TUTORWATCH_WAREHOUSE": str(build_warehouse(tmp_path / "warehouse.duckdb")),
           "TUTORWATCH_OUT": str(tmp_path / "out"), "TUTORWATCH_CASES_URL": f"sqlite:///{tmp_path / 'cases.sqlite'}",
           "TUTORWATCH_SECRET_KEY": "load-test-secret", "GX_ANALYTICS_ENABLED": "false"}
    env.pop("TUTORWATCH_USERS", None)
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("gunicorn")), "-b", f"127.0.0.1:{port}",
                                 *GUNICORN, "dashboards.wsgi:server"], env=env, cwd=tmp_path, stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-2000:]
                try:
                    if requests.get(f"{url}/login", timeout=10).status_code == 200:
                        break
                except requests.RequestException:  # not listening yet, or a worker still importing the app
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(30)


def fetch_list(session: requests.Session, url: str) -> requests.Response:
    """What the grid asks for when the warning list opens: the first block of 2026-W10."""
    return session.post(f"{url}/_dash-update-component", timeout=30, json={
        "output": "warnings-grid.getRowsResponse", "outputs": {"id": "warnings-grid", "property": "getRowsResponse"},
        "inputs": [{"id": "warnings-grid", "property": "getRowsRequest",
                    "value": {"startRow": 0, "endRow": 100, "filterModel": {}, "sortModel": []}}],
        "state": [{"id": "grid-week", "property": "data", "value": "2026-W10"}],
        "changedPropIds": ["warnings-grid.getRowsRequest"]})


def user(url: str, username: str, latencies: list[float], problems: list[str], start: threading.Barrier) -> None:
    session = requests.Session()
    login = session.post(f"{url}/login", data={"username": username, "password": f"{username}-demo"},
                         allow_redirects=False, timeout=30)
    if login.status_code != 302:
        problems.append(f"{username}: login {login.status_code}")
    start.wait()
    for _ in range(FETCHES):
        began = time.perf_counter()
        try:
            response = fetch_list(session, url)
        except requests.RequestException as exc:
            problems.append(f"{username}: {exc}")
            continue
        latencies.append(time.perf_counter() - began)
        if response.status_code != 200:
            problems.append(f"{username}: HTTP {response.status_code}")
            continue
        rows = response.json()["response"]["warnings-grid"]["getRowsResponse"]["rowData"]
        if {r["institution_id"] for r in rows} != VISIBLE[username]:
            problems.append(f"{username}: saw {sorted(r['institution_id'] for r in rows)}")


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def test_twenty_concurrent_users_fetch_their_warning_lists(tmp_path):
    names = [list(VISIBLE)[i % len(VISIBLE)] for i in range(USERS)]
    latencies: list[float] = []
    problems: list[str] = []
    start = threading.Barrier(USERS)
    with serve(tmp_path) as url:
        threads = [threading.Thread(target=user, args=(url, n, latencies, problems, start)) for n in names]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        wall = time.perf_counter() - began
    ms = sorted(x * 1000 for x in latencies)
    figures = (f"{USERS} users × {FETCHES} list fetches = {len(ms)} requests in {wall:.1f} s "
               f"(incl. {USERS} logins); errors {len(problems)}; latency p50 {percentile(ms, 50):.0f} ms, "
               f"p95 {percentile(ms, 95):.0f} ms, max {ms[-1]:.0f} ms")
    print(figures)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(
        "# Dashboard load test\n\n"
        f"gunicorn `{' '.join(GUNICORN)}` on 127.0.0.1, warehouse tests/dashboard/dashboard_fixture.py, "
        f"{os.cpu_count()} cores shared with the rest of the machine.\n\n{figures}\n", encoding="utf-8")
    assert problems == [], (tmp_path / "gunicorn.log").read_text()[-3000:]
    assert len(ms) == USERS * FETCHES
