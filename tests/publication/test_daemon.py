"""Province × week publication through dagster-daemon's run queue (deploy/dagster.yaml), in parallel.

Real daemon, real run workers (one process per run), a hand-made warehouse; the queue must run two at
once and never more.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from publication_fixtures import add_rows

from indicators.rules import build_warnings
from pipelines.partitions import iso_week_partitions, week_province_key

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
WEEKS = ("2026-W09", "2026-W10")
PROVINCES = ("11", "44")
MAX_RUNS = 2


@pytest.fixture
def daemon_home(warehouse, tmp_path):
    """A warehouse with one red institution per province and week, and a DAGSTER_HOME with our instance."""
    add_rows(warehouse, [dict(institution_id=f"91{p}0104MA5AAA{i}A1A", week=w, province_code=p, coverage_ratio=0.3)
                         for i, w in enumerate(WEEKS) for p in PROVINCES])
    build_warnings(warehouse)
    warehouse.close()
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = 1
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "DAGSTER_HOME": str(home), "TUTORWATCH_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
           "TUTORWATCH_OUT": str(tmp_path / "out"), "TUTORWATCH_LANDING": str(tmp_path / "landing")}
    return home, env


def bin_(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def wait_for_runs(instance: dg.DagsterInstance, n: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = instance.get_run_records()
        if len(records) == n and all(r.dagster_run.is_finished for r in records):
            return records
        time.sleep(1)
    raise AssertionError(f"runs not finished after {timeout} s: {[r.dagster_run.status for r in records]}")


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of [start, end] intervals that overlap at one moment."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_most_at_once_counts_overlaps():
    assert most_at_once([(0, 2), (1, 3), (2.5, 4)]) == 2
    assert most_at_once([(0, 1), (1, 2)]) == 1  # one ends as the next starts
    assert most_at_once([(0, 9), (1, 2), (1.5, 3)]) == 3


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not ready after {timeout} s")
        time.sleep(1)


def run_queue_is_up(home: Path) -> bool:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return any("QUEUED_RUN_COORDINATOR" in str(t) for t in instance.get_daemon_heartbeats())


def backfill_through_daemon(home: Path, env: dict, repo_root: Path, keys: list[str], before_submit=None) -> list:
    """Start dagster-daemon, backfill the province partitions `keys`, wait for every run; their records.

    Nothing else touches the instance until the daemon's run queue beats (SQLite storage is created then).
    """
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(iso_week_partitions.name, list(WEEKS))
    daemon = subprocess.Popen([bin_("dagster-daemon"), "run", "-w", str(DEPLOY / "workspace.yaml")], cwd=repo_root,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: run_queue_is_up(home), 240, "dagster-daemon")
        if before_submit:
            before_submit()
        backfill = subprocess.run(
            [bin_("dagster"), "job", "backfill", "-w", str(DEPLOY / "workspace.yaml"), "-j", "province_publication",
             "--partitions", ",".join(keys), "--noprompt"],
            cwd=repo_root, env=env, capture_output=True, text=True, timeout=180)
        assert backfill.returncode == 0, backfill.stdout[-2000:] + backfill.stderr[-2000:]
        with dg.DagsterInstance.from_config(str(home)) as instance:
            return wait_for_runs(instance, len(keys), timeout=400)
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)


def assert_published(out: Path, weeks, provinces) -> None:
    for week in weeks:
        for p in provinces:
            rows = (out / "warnings" / week / f"{p}.csv").read_text(encoding="utf-8-sig").splitlines()
            assert len(rows) == 2 and ",red," in rows[1]
            assert (out / "reports" / week / f"{p}.pdf").exists()


@pytest.mark.slow
def test_daemon_runs_province_partitions_two_at_a_time(daemon_home, tmp_path, repo_root):
    home, env = daemon_home
    keys = [str(week_province_key(w, p)) for w in WEEKS for p in PROVINCES]
    records = backfill_through_daemon(home, env, repo_root, keys)
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in records) == sorted(keys)
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    intervals = [(r.start_time, r.end_time) for r in records]
    assert MAX_RUNS >= most_at_once(intervals) >= 2  # the queue's limit held, and runs did overlap
    assert_published(tmp_path / "out", WEEKS, PROVINCES)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="Debian redis-server not installed")
def test_celery_workers_execute_the_steps_of_queued_runs(daemon_home, tmp_path, repo_root):
    """TUTORWATCH_EXECUTOR=celery: the same definitions, steps executed by a Celery worker via a local Redis."""
    pytest.importorskip("dagster_celery")
    home, env = daemon_home
    port = free_port()
    env = {**env, "TUTORWATCH_EXECUTOR": "celery", "PATH": f"{Path(sys.executable).parent}:{env['PATH']}",
           "TUTORWATCH_CELERY_BROKER": f"redis://127.0.0.1:{port}/0",
           "TUTORWATCH_CELERY_BACKEND": f"redis://127.0.0.1:{port}/1"}
    worker_log = tmp_path / "celery-worker.log"
    started = []

    def start_worker():
        with worker_log.open("wb") as log:
            started.append(subprocess.Popen(
                [bin_("dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y",
                 str(DEPLOY / "celery.yaml"), "--", "--concurrency=2"],
                cwd=repo_root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        wait_until(lambda: " ready." in worker_log.read_text(errors="replace"), 180, "the Celery worker")

    try:
        started.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL, start_new_session=True))
        keys = [str(week_province_key(WEEKS[0], p)) for p in PROVINCES]
        records = backfill_through_daemon(home, env, repo_root, keys, before_submit=start_worker)
    finally:
        for process in reversed(started):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
    assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
    assert worker_log.read_text(errors="replace").count("succeeded in") == 2 * len(keys)  # 2 steps a run
    assert_published(tmp_path / "out", WEEKS[:1], PROVINCES)
