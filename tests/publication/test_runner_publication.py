"""`tutorwatch run`'s publication step: which partitions it plans, and worker processes that publish them."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
import sys
import time
from pathlib import Path

import pytest
from publication_fixtures import add_rows

from indicators.rules import build_warnings
from pipelines.publish import publish_week
from tutorwatch.runner import Batch, Partition, batch_plan, publication_plan, run_batches

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
        done = [(p, ok) for _, outcome, _ in run_batches(plan, jobs) for p, ok in outcome.items()]
        assert sorted((p.label, ok) for p, ok in done) == sorted((p.label, True) for p in plan)
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
    for jobs in (1, 2):
        done = {p.label: ok for _, outcome, _ in run_batches([Partition(W10, "11", LISTS), Partition(W10, "44", LISTS)],
                                                             jobs) for p, ok in outcome.items()}
        assert done == {f"{W10} 11": False, f"{W10} 44": True}
        assert (tmp_path / "out" / "warnings" / W10 / "44.csv").exists()


WORKER_SCRIPT = """
import sys
from tutorwatch.runner import Partition, run_batches
if __name__ == "__main__":
    plan = [Partition("2026-W10", p, ("province_warning_lists",)) for p in ("11", "44") * 20]
    for _ in run_batches(plan, 2):
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


W07, W08 = "2026-W07", "2026-W08"
REPORTS = LISTS + ("province_reports",)


def test_batches_are_rectangles_of_consecutive_weeks_and_provinces_with_the_same_assets():
    """A weekly run: lists of the rebuilt weeks, lists and reports of the newest; 11-12-13 are consecutive
    province codes, 44 is not next to them; W08 of 44 is not in the plan, so its W07 and W09 are apart."""
    plan = [Partition(w, p, LISTS) for w in (W07, W08) for p in ("11", "12", "13")] + [
        Partition(W07, "44", LISTS), Partition(W09, "44", LISTS)] + [
        Partition(W10, p, REPORTS) for p in ("13", "12", "11", "44")] + [
        Partition(w, None, ("warning_lists",)) for w in (W07, W08, W09)] + [
        Partition(W10, None, ("warning_lists", "weekly_reports"))]
    assert batch_plan(plan, most=100) == [
        Batch((W07, W08), ("11", "12", "13"), LISTS),
        Batch((W07,), ("44",), LISTS),
        Batch((W09,), ("44",), LISTS),
        Batch((W10,), ("11", "12", "13"), REPORTS),
        Batch((W10,), ("44",), REPORTS),
        Batch((W07, W08, W09), None, ("warning_lists",)),
        Batch((W10,), None, ("warning_lists", "weekly_reports")),
    ]
    small = batch_plan(plan, most=2)
    assert max(len(b.partitions) for b in small) == 2
    assert Counter(p for b in small for p in b.partitions) == Counter(plan)
    assert Batch((W07,), ("11", "12"), LISTS) in small and Batch((W07, W08), None, ("warning_lists",)) in small


def test_a_long_run_of_provinces_is_cut_into_batches_of_even_sizes():
    """The newest week's reports (a PDF per province) are most of a weekly publication: 5 consecutive provinces
    by at most 4 go as 3 + 2, not 4 + 1, so two workers finish them together."""
    plan = [Partition(W10, p, REPORTS) for p in ("11", "12", "13", "14", "15")]
    assert batch_plan(plan, most=4) == [Batch((W10,), ("11", "12", "13"), REPORTS), Batch((W10,), ("14", "15"), REPORTS)]


def test_a_batch_is_one_run_with_each_partitions_own_materialisation(marts, tmp_path, monkeypatch):
    import dagster as dg

    from pipelines.partitions import iso_week_partitions, week_province_key
    from tutorwatch.runner import publish_batch

    marts.close()
    for name, path in (("WAREHOUSE", "warehouse.duckdb"), ("LANDING", "landing"), ("OUT", "out")):
        monkeypatch.setenv(f"TUTORWATCH_{name}", str(tmp_path / path))
    batch = Batch((W09, W10), ("43", "44"), LISTS)  # Hunan (43) has no institution
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(iso_week_partitions.name, [W09, W10])
        _, outcome, _ = publish_batch(batch, instance)
        assert outcome == dict.fromkeys(batch.partitions, True) and len(instance.get_run_records()) == 1
        records = instance.fetch_materializations(dg.AssetKey("province_warning_lists"), limit=10).records
        by_key = {r.partition_key: r.asset_materialization.metadata for r in records}
        metadata = {(w, p): by_key.pop(week_province_key(w, p)) for w in (W09, W10) for p in ("43", "44")}
        assert not by_key
    assert {k: m["rows"].value for k, m in metadata.items() if k[1] == "43"} == {(W09, "43"): 0, (W10, "43"): 0}
    assert metadata[(W10, "44")]["rows"].value == 1 and metadata[(W10, "44")]["written"].value  # A red, B quiet
    assert sorted(p.name for p in (tmp_path / "out" / "warnings" / W10).glob("*.csv")) == ["44.csv"]


def test_a_failed_batch_is_published_again_one_partition_per_run(marts, tmp_path, monkeypatch):
    marts.close()
    for name, path in (("WAREHOUSE", "warehouse.duckdb"), ("LANDING", "landing"), ("OUT", "out")):
        monkeypatch.setenv(f"TUTORWATCH_{name}", str(tmp_path / path))
    (tmp_path / "out" / "warnings" / W09).mkdir(parents=True)
    (tmp_path / "out" / "warnings" / W09 / "44.manifest.json").write_text("{not json")  # a corrupt record
    plan = [Partition(W09, "44", LISTS), Partition(W10, "44", LISTS)]
    [(batch, outcome, _)] = run_batches(plan, 1)
    assert batch == Batch((W09, W10), ("44",), LISTS)
    assert outcome == {plan[0]: False, plan[1]: True}
    assert (tmp_path / "out" / "warnings" / W10 / "44.csv").exists()


def test_publication_waits_13_weeks_after_both_the_bank_and_consumption_feeds_begin(tmp_path):
    """Orders back-filled from before the other feeds do not start the clock, nor does one of the two feeds
    alone: the model and the trailing indicators need 12 weeks of both before a week's list means anything."""
    from pipelines.warehouse import connect, create_staging_tables
    from tutorwatch.runner import FIRST_WEEKS_SKIPPED, publishable_weeks

    con = connect(tmp_path / "w.duckdb")
    create_staging_tables(con)
    con.execute("create schema if not exists marts")
    con.execute("""create table marts.institution_week_indicators as
        select strftime(d, '%G-W%V') as week, d::date as week_start, d::date + 6 as week_end
        from range(date '2025-12-29', date '2026-09-07', interval 7 day) as t(d)""")  # 2026-W01 … W36
    con.execute("insert into staging.orders (paid_at) values ('2025-12-30 10:00+08')")
    con.execute("insert into staging.account_movements (booked_at) values ('2026-01-13 10:00+08')")  # W03
    con.execute("insert into staging.consumptions (consumed_at) values ('2026-02-04 10:00+08')")  # W06
    con.execute("insert into ops.files (status, delivery_date) values ('loaded', '2026-09-07')")
    weeks = publishable_weeks(con, None)
    assert FIRST_WEEKS_SKIPPED == 12 and weeks[0] == "2026-W18" and weeks[-1] == "2026-W36"
    assert publishable_weeks(con, ("2026-W02", "2026-W04")) == ["2026-W02", "2026-W03", "2026-W04"]
    con.execute("delete from staging.consumptions")  # the bank feed alone: its first week starts the clock
    assert publishable_weeks(con, None)[0] == "2026-W15"
