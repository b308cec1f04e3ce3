"""The benchmark's correctness guarantee: on a small generated landing, (b) the reference SQL and (c) pandas
agree with the pipeline's mart on the seven core indicators; and the landing split of the incremental run."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from bench.convert import convert_landing
from bench.pandas_core import CORE, chunks_for, pandas_indicators
from bench.reference import reference_indicators
from bench.report import render
from bench.run import split_landing
from pipelines.warehouse import connect
from tutorwatch.generator import generate

FEN = ("prepaid_liability_fen", "supervised_balance_fen", "release_beyond_consumed_fen")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """200 institutions over 20 weeks at national scale (Parquet deliveries), ingested and with indicators
    through the real Dagster assets; the landing converted to Parquet as the benchmark does."""
    root = tmp_path_factory.mktemp("bench")
    generate(scale="national", weeks=20, seed=3, out=root / "data", institutions=200)
    mp = pytest.MonkeyPatch()
    mp.setenv("TUTORWATCH_PII_KEY", "bench-test-pseudonymisation-key")
    from pipelines.resources import set_default_environment

    set_default_environment(root / "data" / "landing", root / "out")
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    selection = [k for k in graph.get_all_asset_keys()
                 if graph.get(k).group_name == "ingest" or k.path == ["institution_week_indicators"]]
    result = dg.materialize(list(defs.assets) + list(defs.asset_checks or []), selection=selection,
                            resources=defs.resources, instance=dg.DagsterInstance.ephemeral())
    mp.undo()
    assert result.success
    convert_landing(root / "data" / "landing", root / "parquet")
    with connect(root / "out" / "warehouse.duckdb", read_only=True) as con:
        mart = con.execute(f"SELECT institution_id, week, {', '.join(CORE)} FROM marts.institution_week_indicators"
                           ).df()
        # institutions with a quarantined row: the converter keeps rows the contract rules drop
        touched = {i for (i,) in con.execute(
            "SELECT DISTINCT json_extract_string(row_json, '$.institution_id') FROM quarantine.rows").fetchall()}
    return root, mart[~mart["institution_id"].isin(touched)]


def assert_agrees(mart: pd.DataFrame, other: pd.DataFrame) -> None:
    joined = mart.merge(other, on=["institution_id", "week"], how="left", suffixes=("", "_other"),
                        indicator=True)
    assert (joined["_merge"] == "both").all()
    assert len(joined) > 1000
    for name in CORE:
        expected, got = joined[name].to_numpy(float), joined[f"{name}_other"].to_numpy(float)
        both_null = np.isnan(expected) & np.isnan(got)
        # fen values are rounded sums of fractional consumed values: summation order may move one by 1 fen,
        # and the coverage ratio by the same 1 fen of its liability
        liability = np.abs(joined["prepaid_liability_fen"].to_numpy(float))
        slack = {"coverage_ratio": np.abs(expected) * 1.01 / np.maximum(liability - 1, 1)}
        close = np.isclose(got, expected, rtol=1e-9, atol=1e-9) | (
            np.abs(got - expected) <= slack.get(name, 1.0 if name in FEN else 0.0))
        assert (both_null | close).all(), joined.loc[~(both_null | close), ["institution_id", "week", name,
                                                                            f"{name}_other"]].head()


def test_reference_sql_agrees_with_the_mart(generated):
    root, mart = generated
    con = duckdb.connect()
    assert_agrees(mart, reference_indicators(con, root / "parquet").df())


@pytest.mark.parametrize("chunks", [1, 3])
def test_pandas_agrees_with_the_mart(generated, chunks):
    """Also in chunks of institutions, as the benchmark runs it at national scale (one piece needs ~30 GB)."""
    root, mart = generated
    assert_agrees(mart, pandas_indicators(root / "parquet", chunks))


def test_the_pandas_chunks_follow_the_rows_of_the_big_feeds(generated):
    root, _ = generated
    assert chunks_for(root / "parquet", 10_000_000) == 1
    rows = sum(len(pd.read_parquet(root / "parquet" / f"{feed}.parquet", columns=["institution_id"]))
               for feed in ("consumptions", "account_movements"))
    assert chunks_for(root / "parquet", -(-rows // 3)) == 3


def test_the_model_step_trains_or_falls_back_and_scores_every_mart_row(generated, tmp_path):
    """`bench.steps model` over a copy of an ingested warehouse: its two phases are timed and every
    institution-week of the mart gets a score (from the model, or from the rule score when training is skipped)."""
    import shutil

    from bench.steps import main

    root, _ = generated
    warehouse = shutil.copy(root / "out" / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    main(["model", "--json", str(tmp_path / "model.json"), "--warehouse", str(warehouse), "--out", str(tmp_path)])
    figures = json.loads((tmp_path / "model.json").read_text(encoding="utf-8"))
    assert figures["train"]["seconds"] > 0 and figures["score"]["peak_mb"] > 0
    with connect(warehouse, read_only=True) as con:
        mart = con.execute("SELECT count(*) FROM marts.institution_week_indicators").fetchone()[0]
        scored = con.execute("SELECT count(*) FROM marts.institution_week_scores").fetchone()[0]
    assert figures["rows_scored"] == scored == mart > 1000


def test_the_indicators_step_refreshes_the_newest_week_to_the_full_mart(generated, tmp_path):
    """`bench.steps indicators`: the mart over the older deliveries, refreshed with the newest week's, equals
    the mart computed at once over the same staging; rows paid after their delivery are left out as the
    contract quarantines them, so no week after the newest delivery is computed."""
    from bench.steps import main
    from indicators.compute import MART, compute_institution_week_indicators

    root, _ = generated
    newest = duckdb.connect().execute(f"SELECT strftime(max(_delivery_date), '%G-W%V') FROM "
                        f"read_parquet('{root / 'parquet' / 'orders.parquet'}')").fetchone()[0]
    main(["indicators", "--json", str(tmp_path / "indicators.json"), "--parquet", str(root / "parquet"),
          "--out", str(tmp_path), "--week", newest])
    figures = json.loads((tmp_path / "indicators.json").read_text(encoding="utf-8"))
    assert figures["seconds"]["incremental"] > 0 and 0 < figures["weeks_recomputed"] < 20
    with connect(tmp_path / "indicators.duckdb") as con:
        assert con.execute(f"SELECT max(week) FROM {MART}").fetchone()[0] <= newest
        refreshed = con.execute(f"SELECT * EXCLUDE (_computed_at, _changed_at) FROM {MART} ORDER BY ALL").df()
        assert figures["institutions_recomputed"] == refreshed["institution_id"].nunique() > 100
        compute_institution_week_indicators(con)
        whole = con.execute(f"SELECT * EXCLUDE (_computed_at, _changed_at) FROM {MART} ORDER BY ALL").df()
    pd.testing.assert_frame_equal(refreshed, whole, check_exact=False, rtol=1e-12)


def test_split_landing_keeps_the_newest_delivery_week_for_b(tmp_path):
    landing = tmp_path / "landing"
    names = ["orders/orders_20260302.parquet", "orders/orders_20260302.parquet.manifest.json",
             "orders/orders_20260309.parquet",                   # Monday of 2026-W11: the newest week
             "account_movements/account_movements_20260308_2.parquet",  # Sunday of 2026-W10
             "account_movements/account_movements_20260315_1.parquet",  # Sunday of 2026-W11
             "orders/notes.txt"]                                  # not a delivery: ignored
    for name in names:
        (landing / name).parent.mkdir(parents=True, exist_ok=True)
        (landing / name).write_text(name)
    assert split_landing(landing, tmp_path / "a", tmp_path / "b") == "2026-W11"
    listed = {tree: sorted(str(p.relative_to(tmp_path / tree)) for p in (tmp_path / tree).glob("*/*"))
              for tree in ("a", "b")}
    assert listed["a"] == ["account_movements/account_movements_20260308_2.parquet",
                           "orders/orders_20260302.parquet", "orders/orders_20260302.parquet.manifest.json"]
    assert listed["b"] == sorted(listed["a"] + ["account_movements/account_movements_20260315_1.parquet",
                                                "orders/orders_20260309.parquet"])
    assert (tmp_path / "b" / "orders" / "orders_20260309.parquet").read_text() == "orders/orders_20260309.parquet"


def test_results_report_ratios_and_stages(tmp_path):
    def timing(seconds, peak_mb=100.0, **figures):
        return {"seconds": seconds, "peak_mb": peak_mb, "ok": True, "figures": figures}

    def step(seconds, peak_mb):
        return {"seconds": seconds, "start_mb": 0, "peak_mb": peak_mb}

    figures = {
        "label": "tiny", "date": "today", "cpus": 2, "memory_limit": "4GB", "newest_week": "2026-W11",
        "convert": timing(5, delivered={"orders": 400, "account_movements": 600}),
        "pipeline": timing(30, 5000, steps={"orders": step(4, 900), "orders_orders_contract": step(3, 1200),
                                            "institution_week_indicators": step(6, 2000), "risk_model": step(2, 3000)},
                           publication_s=10, publication_peak_mb=700),
        "reference": timing(10), "pandas": timing(120), "commits": {"pipeline": ["abc1234", "def5678"]},
        "incremental": timing(12, steps={"orders": step(1, 500), "institution_week_indicators": step(2, 800)},
                              publication_s=3, publication_peak_mb=400),
    }
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "figures.json").write_text(json.dumps(figures))
    text = render(tmp_path)
    assert "a/b = 3.0 (target ≤ 2: missed)" in text            # 30 / 10
    assert "c/a = 4.00 (target ≥ 5: missed)" in text           # 120 / 30
    assert "incremental run 12 s (target ≤ 60 s: met)" in text
    assert "- pipeline ran in 2 parts, each resuming the killed one (code abc1234, def5678)" in text
    assert "| (a) full pipeline, landing → published lists | 30.0 | 33 | 5,000 | ✗ |" in text  # 1000 rows / 30 s
    # per stage: seconds, peak MiB, seconds / the reference's 10 s; for (a) then for the incremental run
    assert "| ingest: read, route, merge | 4.0 | 900 | 0.4 | 1.0 | 500 | 0.1 |" in text
    assert "| ingest: GX contract checks | 3.0 | 1,200 | 0.3 | 0.0 | 0 | 0.0 |" in text
    assert "| indicators | 6.0 | 2,000 | 0.6 | 2.0 | 800 | 0.2 |" in text
    assert "| model: training + backtest | 2.0 | 3,000 | 0.2 | 0.0 | 0 | 0.0 |" in text
    assert "| publication | 10.0 | 700 | 1.0 | 3.0 | 400 | 0.3 |" in text


def test_a_failed_rerun_keeps_the_earlier_figures_and_is_reported_beside_them(tmp_path):
    """A rerun that fails (a national (a) out of disk after 33 min) does not wipe the earlier measurement; a
    step that never succeeded shows its failure; the next success replaces both."""
    from bench.run import Timing, record

    figures = {"label": "tiny", "date": "today", "cpus": 2, "memory_limit": "4GB", "commit": "new0001"}
    record(figures, Timing("pipeline", 4484.6, 7430.0, True, {"steps": {}}), ["old0001"])
    record(figures, Timing("pipeline", 2004.1, 3772.0, False), ["new0001"])
    record(figures, Timing("reference", 178.0, 3900.0, False), ["new0001"])
    assert figures["pipeline"]["seconds"] == 4484.6 and figures["commits"]["pipeline"] == ["old0001"]
    assert figures["reference"]["ok"] is False and "reference" not in figures["failed"]
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "figures.json").write_text(json.dumps(figures))
    text = render(tmp_path)
    assert "| (a) full pipeline, landing → published lists | 4,484.6 |" in text
    assert ("- the latest pipeline run (code new0001) failed after 2,004 s (peak 3,772 MiB); the figures above "
            "are the earlier run's (code old0001)") in text
    assert "| (b) " in text and "failed after 178 s" in text
    record(figures, Timing("pipeline", 4000.0, 4000.0, True, {"steps": {}}), ["new0001"])
    assert figures["pipeline"]["seconds"] == 4000.0 and figures["failed"] == {}


@pytest.mark.slow
def test_a_pipeline_killed_and_resumed_is_timed_over_both_parts(tmp_path):
    """`bench.steps pipeline` killed while it merges the bank movements, then `--resume`d (how (a) at national
    outlives a working session): the figures cover both parts, each warehouse step once, every delivered row."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from pipelines.definitions import warehouse_job

    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "tests" / "fixtures" / "handmade_landing", tmp_path / "landing")
    out, result = tmp_path / "out", tmp_path / "pipeline.json"
    argv = [sys.executable, "-m", "bench.steps", "pipeline", "--json", str(result), "--landing",
            str(tmp_path / "landing"), "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=root, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    for line in proc.stdout:
        if "account_movements: account_movements_" in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    assert proc.wait() == -signal.SIGKILL and not result.exists()
    subprocess.run(argv + ["--resume"], cwd=root, check=True, capture_output=True)

    figures = json.loads(result.read_text(encoding="utf-8"))
    killed, resumed = figures["parts"]
    assert (killed["status"], resumed["status"]) == ("FAILURE", "SUCCESS") and killed["steps"] > 0
    assert set(figures["steps"]) == {node.name for node in warehouse_job().graph.nodes}
    assert killed["seconds"] > 0 and figures["elapsed_s"] > killed["seconds"] + resumed["seconds"]
    assert figures["warehouse_s"] + figures["publication_s"] <= figures["elapsed_s"]
    rss = [float(line.split("\t")[0]) for line in (out / "rss.tsv").read_text().splitlines()]
    assert min(rss) < resumed["started"] and figures["killed_peak_mb"] > 0  # the killed part's samples count
    with connect(out / "warehouse.duckdb", read_only=True) as con:
        total, early = con.execute("SELECT sum(rows_delivered), count(*) FILTER (WHERE loaded_at < to_timestamp(?)) "
                                   "FROM ops.files", [resumed["started"]]).fetchone()
    assert figures["rows_delivered"] == total and early > 0


def test_the_memory_target_is_4_gb_of_the_mib_measured():
    """Peaks are measured in MiB; `TUTORWATCH_MEMORY_LIMIT=4GB` is 4·10⁹ bytes, 3,815 MiB: 3,900 MiB misses it."""
    from bench.report import _row

    step = {"ok": True, "seconds": 1.0}
    assert _row("a", step | {"peak_mb": 3_800}, 10).endswith("| 3,800 | ✓ |")
    assert _row("a", step | {"peak_mb": 3_900}, 10).endswith("| 3,900 | ✗ |")
