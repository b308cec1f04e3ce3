"""`tutorwatch run`'s publication step: which partitions it plans, and worker processes that publish them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from publication_fixtures import add_rows

from indicators.rules import build_warnings
from pipelines.publish import publish_week
from tutorwatch.runner import Partition, publication_plan, run_partitions

A, B, D = "91440104MA5AAAAA1A", "91440104MA5BBBBB1B", "91110105MA5DDDDD1D"
W09, W10 = "2026-W09", "2026-W10"
LISTS = ("province_warning_lists",)


@pytest.fixture
def marts(warehouse):
    """W09: Guangdong only; W10: Guangdong (A red, B quiet) and Beijing (D red)."""
    add_rows(warehouse, [
        dict(institution_id=A, week=W09, province_code="44", overdue_refunds=1),
        dict(institution_id=A, week=W10, province_code="44", coverage_ratio=0.6),
        dict(institution_id=B, week=W10, province_code="44"),
        dict(institution_id=D, week=W10, province_code="11", coverage_ratio=0.5),
    ])
    build_warnings(warehouse)
    warehouse.execute("drop table if exists ops.week_builds")
    return warehouse


def test_plan_publishes_stale_lists_and_the_newest_reports_provinces_first(marts, tmp_path):
    assert publication_plan(marts, tmp_path, [W09, W10], [W10]) == [
        Partition(W09, "44", LISTS),
        Partition(W10, "11", LISTS + ("province_reports",)),
        Partition(W10, "44", LISTS + ("province_reports",)),
        Partition(W09, None, ("warning_lists",)),
        Partition(W10, None, ("warning_lists", "weekly_reports")),
    ]


def test_plan_after_publication_holds_only_rebuilt_weeks_and_reports(marts, tmp_path):
    marts.execute("create table ops.week_builds (week varchar primary key, built_at timestamptz)")
    marts.execute("insert into ops.week_builds values (?, '2026-03-09 08:00:00+08'), (?, '2026-03-16 08:00:00+08')",
                  [W09, W10])
    publish_week(marts, tmp_path, W09)
    publish_week(marts, tmp_path, W10)
    assert publication_plan(marts, tmp_path, [W09, W10], []) == []
    assert publication_plan(marts, tmp_path, [W09, W10], [W10]) == [
        Partition(W10, "11", ("province_reports",)), Partition(W10, "44", ("province_reports",)),
        Partition(W10, None, ("weekly_reports",))]
    marts.execute("update ops.week_builds set built_at = now() where week = ?", [W09])  # late rows rebuilt W09
    assert publication_plan(marts, tmp_path, [W09, W10], []) == [
        Partition(W09, "44", LISTS), Partition(W09, None, ("warning_lists",))]


def test_worker_processes_publish_the_same_lists_as_one_process(marts, tmp_path, monkeypatch):
    marts.close()
    monkeypatch.setenv("TUTORWATCH_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("TUTORWATCH_LANDING", str(tmp_path / "landing"))
    plan = [Partition(W09, "44", LISTS), Partition(W10, "11", LISTS), Partition(W10, "44", LISTS),
            Partition(W09, None, ("warning_lists",)), Partition(W10, None, ("warning_lists",))]
    outputs = {}
    for jobs in (1, 2):
        monkeypatch.setenv("TUTORWATCH_OUT", str(tmp_path / f"out{jobs}"))
        done = list(run_partitions(plan, jobs))
        assert sorted((p.label, ok) for p, ok, _ in done) == sorted((p.label, True) for p in plan)
        folder = tmp_path / f"out{jobs}" / "warnings"
        outputs[jobs] = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.csv")}
    assert len(outputs[1]) == 5 and outputs[2] == outputs[1]
    assert D.encode() in outputs[2][tmp_path.joinpath(W10, "11.csv").relative_to(tmp_path)]


def test_a_failed_partition_is_reported_and_the_others_still_publish(marts, tmp_path, monkeypatch):
    marts.close()
    monkeypatch.setenv("TUTORWATCH_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("TUTORWATCH_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("TUTORWATCH_OUT", str(tmp_path / "out"))
    (tmp_path / "out" / "warnings" / W10).mkdir(parents=True)
    (tmp_path / "out" / "warnings" / W10 / "11.manifest.json").write_text("{not json")  # a corrupt record
    done = {p.label: ok for p, ok, _ in run_partitions([Partition(W10, "11", LISTS), Partition(W10, "44", LISTS)], 2)}
    assert done == {f"{W10} 11": False, f"{W10} 44": True}
    assert (tmp_path / "out" / "warnings" / W10 / "44.csv").exists()


WORKER_SCRIPT = """
import sys
from tutorwatch.runner import Partition, run_partitions
if __name__ == "__main__":
    plan = [Partition("2026-W10", p, ("province_warning_lists",)) for p in ("11", "44") * 20]
    for _ in run_partitions(plan, 2):
        pass
"""


def children(pid: int) -> set[int]:
    """Every process whose parent is `pid`, from /proc (Linux)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_and_their_fork_server_die_with_a_killed_run(marts, tmp_path, monkeypatch):
    """SIGKILL of the run's process alone (not its group): no worker may go on writing files behind it."""
    marts.close()
    script = tmp_path / "publish.py"
    script.write_text(WORKER_SCRIPT)
    env = {**os.environ, "TUTORWATCH_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
           "TUTORWATCH_OUT": str(tmp_path / "out"), "TUTORWATCH_LANDING": str(tmp_path / "landing")}
    run = subprocess.Popen([sys.executable, str(script)], env=env, cwd=tmp_path)
    deadline = time.monotonic() + 120
    helpers = workers = set()
    while len(workers) < 2:
        assert run.poll() is None and time.monotonic() < deadline, "the workers never started"
        time.sleep(0.2)
        helpers = children(run.pid)  # the fork server and the resource tracker
        workers = {w for h in helpers for w in children(h)}
    run.kill()
    run.wait()
    deadline = time.monotonic() + 60
    while any(alive(p) for p in helpers | workers) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [p for p in helpers | workers if alive(p)]
