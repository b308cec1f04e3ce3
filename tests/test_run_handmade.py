"""`tutorwatch run` end to end on a landing directory written by hand (not by the generator)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.warehouse import connect
from tutorwatch.runner import holding

FIXTURE = Path(__file__).parent / "fixtures" / "handmade_landing"
RISKY = "52110105MJ0123456N"
HEALTHY = "91440104MA5ABCD1XA"


def planted_pii(folder: Path) -> set[str]:
    """Every phone and resident ID number written in the fixture, digits only (dashes removed)."""
    found: set[str] = set()
    for path in folder.rglob("*.csv"):
        text = path.read_bytes().decode("utf-8", errors="ignore")
        found.update(re.findall(r"(?<!\d)1[3-9]\d{9}(?!\d)", text))
        found.update(re.sub(r"\D", "", m) for m in re.findall(r"1[3-9]\d-\d{4}-\d{4}", text))
        found.update(re.findall(r"(?<!\d)\d{17}[\dX](?!\d)", text))
    return found


def tutorwatch(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess; cwd keeps a developer's .env out of the test."""
    return subprocess.run([sys.executable, "-m", "tutorwatch.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env or os.environ.copy(), timeout=600)


@pytest.fixture(scope="module")
def handmade_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("handmade")
    landing = root / "landing"
    shutil.copytree(FIXTURE, landing)
    out = root / "out"
    proc = tutorwatch("run", "--landing", str(landing), "--out", str(out), "--weeks", "2026-W02:2026-W03", cwd=root)
    return landing, out, proc


def test_run_succeeds_and_prints_progress_and_summary(handmade_run):
    _, out, proc = handmade_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[1/2]" in proc.stdout and "[2/2]" in proc.stdout
    assert "publishing 2026-W03 11" in proc.stdout and "publishing 2026-W03 national" in proc.stdout
    assert "8 partitions to publish, in this process" in proc.stdout  # too few for worker processes
    assert str(out / "warnings") in proc.stdout


def test_risky_institution_is_red_and_healthy_one_is_not(handmade_run):
    _, out, _ = handmade_run
    with (out / "warnings" / "2026-W03" / "11.csv").open(encoding="utf-8-sig") as fh:
        rows = {r["institution_id"]: r for r in csv.DictReader(fh)}
    assert rows[RISKY]["tier"] == "red"
    assert rows[RISKY]["reasons"]
    with (out / "warnings" / "2026-W03" / "all.csv").open(encoding="utf-8-sig") as fh:
        national = {r["institution_id"]: r for r in csv.DictReader(fh)}
    assert national[RISKY]["province_code"] == "11"
    assert national.get(HEALTHY, {}).get("tier") != "red"


def test_bad_check_character_is_quarantined_and_the_rest_loads(handmade_run):
    _, out, _ = handmade_run
    with connect(out / "warehouse.duckdb", read_only=True) as con:
        quarantined = con.execute(
            "select row_number, rule from quarantine.rows where feed = 'orders' and file_name = 'orders_20260112.csv'"
        ).fetchall()
        loaded = con.execute("select count(*) from staging.orders").fetchone()[0]
    assert {row for row, _ in quarantined} == {4}  # O-X-001 only
    assert "orders.institution_id.uscc_check" in {rule for _, rule in quarantined}
    assert loaded == 10  # 11 delivered order rows, one quarantined


def test_refund_correction_supersedes_first_version(handmade_run):
    _, out, _ = handmade_run
    with connect(out / "warehouse.duckdb", read_only=True) as con:
        current = con.execute("select status from staging.refunds where refund_id = 'R-C-001'").fetchall()
        versions = con.execute("select count(*) from staging.refunds_history where refund_id = 'R-C-001'").fetchone()
    assert current == [("paid",)]
    assert versions[0] == 2


def test_no_planted_phone_or_id_number_in_any_output(handmade_run):
    landing, out, _ = handmade_run
    planted = planted_pii(landing)
    assert "15100151002" in planted and "110105198001011238" in planted
    leaks = [(path.name, number) for path in out.rglob("*") if path.is_file()
             for number in planted if number.encode() in path.read_bytes()]
    assert leaks == []


def test_a_second_run_changes_no_published_list(handmade_run):
    """Same deliveries again: every list renders byte-identical, so nothing is written."""
    landing, out, _ = handmade_run
    folder = out / "warnings"

    def published():
        """Every list file, and each manifest's revisions (its built_at moves when a week is rebuilt)."""
        lists = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*.*") if p.suffix in (".csv", ".xlsx")}
        return lists, {p.name: json.loads(p.read_text())["revisions"] for p in folder.rglob("*.manifest.json")}

    before = published()
    proc = tutorwatch("run", "--landing", str(landing), "--out", str(out), "--weeks", "2026-W02:2026-W03",
                      cwd=out.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(before[0]) == 14 and published() == before  # 3 provinces × (csv, xlsx) + all.csv, 2 weeks
    assert not list(folder.rglob("rev*"))


def test_default_weeks_skip_the_first_twelve(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "landing")
    proc = tutorwatch("run", "--landing", str(tmp_path / "landing"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "out" / "warnings" / "2026-W03").exists()


def test_unusable_landing_and_missing_key_are_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = tutorwatch("run", "--landing", str(tmp_path / "empty"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2 and "holds no delivery files" in proc.stderr

    env = {k: v for k, v in os.environ.items() if k != "TUTORWATCH_PII_KEY"}
    shutil.copytree(FIXTURE, tmp_path / "landing")
    proc = tutorwatch("run", "--landing", str(tmp_path / "landing"), "--out", str(tmp_path / "out2"),
                      cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "TUTORWATCH_PII_KEY" in proc.stderr
    assert not (tmp_path / "out2" / "warehouse.duckdb").exists()


def test_resume_without_an_earlier_run_and_a_second_run_on_the_same_out_are_refused(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "landing")
    args = ["--landing", str(tmp_path / "landing"), "--out", str(tmp_path / "out")]
    proc = tutorwatch("run", *args, "--resume", cwd=tmp_path)
    assert proc.returncode == 2 and "nothing to resume" in proc.stderr
    with holding(tmp_path / "out"):
        proc = tutorwatch("run", *args, cwd=tmp_path)
    assert proc.returncode == 2 and "another tutorwatch run is using" in proc.stderr
    assert not (tmp_path / "out" / "warehouse.duckdb").exists()
