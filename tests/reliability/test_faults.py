"""Faults: `tutorwatch run` (the installed CLI) killed with SIGKILL while it ingests and while it publishes,
then run again or resumed (`--resume`), ends exactly where an uninterrupted run ends; a published list never
changes afterwards.

Each run processes the hand-made landing (tests/fixtures/handmade_landing, four weekly deliveries; see
reliability_helpers.new_root) and publishes 2026-W02 and 2026-W03, ~20-30 s a run.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from openpyxl import load_workbook

from data_contracts.feeds import FEEDS
from pipelines.warehouse import connect
from tutorwatch.runner import finished_steps, open_instance
from reliability_helpers import RISKY, command, environment, new_root, pii_leaks, planted_numbers, run

# Per-run bookkeeping: the rows of the last run's batch, not warehouse content.
PER_RUN_TABLES = ("ops.last_batch_",)


def run_and_kill(root: Path, when: Callable[[str], bool], timeout: float = 240) -> str:
    """Start the CLI in its own process group; SIGKILL the whole group (the CLI and its publication worker
    processes, as a crash of the machine would) as soon as `when(output so far)` holds, checked every
    50 ms so that a file appearing on disk can trigger it too. Returns the output up to the kill."""
    proc = subprocess.Popen(command(root), cwd=root, env=environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while not when("".join(lines)):
            assert proc.poll() is None, "the run ended before the kill point:\n" + "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "kill point never reached"
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):  # already gone when the assertion above failed
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join(5)
    assert proc.returncode == -signal.SIGKILL
    return "".join(lines)


def table_counts(warehouse: Path) -> dict[str, int]:
    with connect(warehouse, read_only=True) as con:
        tables = con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables "
                             "ORDER BY 1").fetchall()
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for (t,) in tables
                if not t.startswith(PER_RUN_TABLES)}


def xlsx_cells(path: Path) -> list:
    workbook = load_workbook(path, read_only=True)
    return [[list(r) for r in sheet.iter_rows(values_only=True)] for sheet in workbook.worksheets]


def without_clock(manifest: object) -> object:
    """A manifest without what differs between two honest runs: timestamps (`*_at`) and the hashes of
    workbooks (an .xlsx file carries its creation time)."""
    if isinstance(manifest, dict):
        return {k: without_clock(v) for k, v in manifest.items()
                if not k.endswith("_at") and not k.endswith(".xlsx")}
    if isinstance(manifest, list):
        return [without_clock(v) for v in manifest]
    return manifest


def published(out: Path) -> dict[str, object]:
    """Every file under warnings/: CSV by sha256, workbooks by cell values, manifests without the clock."""
    found: dict[str, object] = {}
    for path in sorted(p for p in (out / "warnings").rglob("*") if p.is_file()):
        name = str(path.relative_to(out))
        if path.suffix == ".xlsx":
            found[name] = xlsx_cells(path)
        elif path.name.endswith("manifest.json"):
            found[name] = without_clock(json.loads(path.read_text(encoding="utf-8")))
        else:
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def state(root: Path) -> tuple[dict, dict, list[str]]:
    out = root / "out"
    reports = sorted(str(p.relative_to(out)) for p in (out / "reports").rglob("*") if p.is_file())
    return table_counts(out / "warehouse.duckdb"), published(out), reports


@pytest.fixture(scope="module")
def reference(reference_root) -> tuple[dict, dict, list[str]]:
    found = state(reference_root)
    assert any(name.endswith("2026-W03/all.csv") for name in found[1])
    return found


def test_killed_while_ingesting_then_rerun_matches_an_uninterrupted_run(reference, tmp_path):
    root = new_root(tmp_path, "killed")
    # the orders of 2026-01-12 are read inside the orders transaction, before it commits
    output = run_and_kill(root, lambda out: "orders_20260112.csv read" in out)
    assert "[2/2]" not in output
    assert pii_leaks(root / "out", planted_numbers()) == []  # nor in what the kill left (the WAL among it)
    run(root)
    assert state(root) == reference


def test_killed_while_publishing_then_rerun_matches_an_uninterrupted_run(reference, tmp_path):
    root = new_root(tmp_path, "killed")
    warnings = root / "out" / "warnings"
    run_and_kill(root, lambda _: any(warnings.rglob("*.csv")))  # the first list file, finished or not
    finished = {name for name in published(root / "out") if not name.endswith(".partial")}  # a write cut short
    assert finished < set(reference[1])  # killed with lists still to write (the rerun must clear the .partial)
    assert "had finished: on to publication" in run(root, "--resume")  # the warehouse run is not repeated
    assert [status for status, _ in warehouse_runs(root / "out")] == ["SUCCESS"]
    assert state(root) == reference


def warehouse_runs(out: Path) -> list[tuple[str, set[str]]]:
    """(status, finished step keys) of each warehouse run kept in OUT, oldest first."""
    with open_instance(out) as instance:
        return [(r.status.value, {s.step_key for s in finished_steps(instance, r.run_id)})
                for r in instance.get_runs(ascending=True)]


def test_killed_while_merging_bank_movements_then_resumed_matches_an_uninterrupted_run(reference, tmp_path):
    """`--resume` re-executes the killed run from its first unfinished step: the steps that had finished do not
    run again, and the result is the uninterrupted run's."""
    root = new_root(tmp_path, "killed")
    run_and_kill(root, lambda out: "account_movements: account_movements_" in out)
    [(status, done_before)] = warehouse_runs(root / "out")
    assert status == "STARTED" and "orders" in done_before and "account_movements" not in done_before
    assert "resuming the warehouse run" in run(root, "--resume")
    (killed, _), (resumed, done_after) = warehouse_runs(root / "out")
    assert (killed, resumed) == ("FAILURE", "SUCCESS")
    assert not done_before & done_after and {"account_movements", "warnings"} <= done_after
    assert state(root) == reference


def test_a_published_list_never_changes_and_a_change_is_a_new_revision(reference_root, tmp_path):
    """(The reruns after a kill above show that running the same landing again publishes nothing new.)"""
    root = tmp_path / "revisions"
    shutil.copytree(reference_root, root)
    week = root / "out" / "warnings" / "2026-W03"
    # the lists as published; manifests are the week's index of revisions and grow
    first_bytes = {p: p.read_bytes() for p in week.rglob("*") if p.is_file() and not p.name.endswith(".json")}
    assert week / "11.csv" in first_bytes and week / "all.csv" in first_bytes

    # a late complaint about the red institution, received in 2026-W03 and delivered a week later
    late = root / "landing" / "complaints" / "complaints_20260126.csv"
    with late.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, FEEDS["complaints"].column_names, lineterminator="\n")
        writer.writeheader()
        writer.writerow(dict(complaint_id="Q-LATE-1", institution_id=RISKY, received_at="2026-01-15T09:00:00+08:00",
                             category="closure_or_absconding", text="机构已停课,老师联系不上",
                             parent_phone="13700001111", status="open"))
    run(root)
    assert {p: p.read_bytes() for p in first_bytes} == first_bytes  # every file of revision 1, byte for byte
    for name in ("all.csv", "11.csv"):  # the late complaint changes the red institution's reasons
        assert (week / "rev2" / name).read_bytes() != first_bytes[week / name]
        assert RISKY in (week / "rev2" / name).read_text(encoding="utf-8-sig")
    assert not (root / "out" / "warnings" / "2026-W02" / "rev2").exists()  # W02 did not change
