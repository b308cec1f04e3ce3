"""One benchmark step per process (`python -m bench.steps <step> ...`), so each gets its own wall time and
peak RSS (the parent reads them with os.wait4). Each step writes a small JSON of its own figures."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def _pipeline(args: argparse.Namespace) -> dict:
    """`tutorwatch run` (with --resume: continuing the run in --out that was killed), profiled: seconds and peak
    RSS of each Dagster step (asset or contract check) from the event log OUT keeps, and of publication; RSS
    sampled once a second over this process and its workers, kept in OUT/rss.tsv across resumed parts.

    A resumed run counts each killed part up to the end of its last finished step: the step it was killed in
    runs again, and the killed process's start-up (seconds) is not counted. (A part killed while publishing
    would leave its lists' time uncounted: the lists it wrote are not written again.)"""
    import dagster as dg

    from bench.profile import RssSampler
    from pipelines.warehouse import connect
    from tutorwatch import runner

    marks: list[tuple[float, str]] = []

    def echo(line: str) -> None:
        marks.append((time.time(), line))
        print(line, flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with RssSampler(log=out / "rss.tsv") as rss:
        runner.run(Path(args.landing), out, echo=echo, resume=args.resume)
    steps: dict[str, dict] = {}
    parts = []
    with runner.open_instance(out) as instance:
        records = instance.get_run_records(filters=dg.RunsFilter(job_name=runner.WAREHOUSE_JOB), ascending=True)
        root = records[-1].dagster_run.root_run_id or records[-1].dagster_run.run_id  # this run and what it resumed
        for record in (r for r in records if root in (r.dagster_run.run_id, r.dagster_run.root_run_id)):
            finished = runner.finished_steps(instance, record.dagster_run.run_id)
            for stat in finished:
                steps[stat.step_key] = {"seconds": stat.end_time - stat.start_time,
                                        "start_mb": rss.at_mb(stat.start_time),
                                        "peak_mb": rss.peak_mb(stat.start_time, stat.end_time)}
            ended = (record.end_time if record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
                     else max((s.end_time for s in finished), default=record.start_time))
            parts.append({"run_id": record.dagster_run.run_id, "status": record.dagster_run.status.value,
                          "started": record.start_time, "seconds": ended - record.start_time,
                          "steps": len(finished)})
    first = min([started] + [p["started"] for p in parts])
    publication_start = next(t for t, line in marks if line.startswith("[2/2]"))
    with connect(out / "warehouse.duckdb", read_only=True) as con:  # the files this run read
        delivered = con.execute("SELECT sum(rows_delivered) FROM ops.files WHERE loaded_at >= to_timestamp(?)",
                                [first]).fetchone()[0]
    killed = sum(p["seconds"] for p in parts if p["started"] < started)
    return {"steps": steps, "rows_delivered": int(delivered or 0), "parts": parts,
            "elapsed_s": killed + marks[-1][0] - started,
            "warehouse_s": killed + publication_start - started,
            "publication_s": marks[-1][0] - publication_start,
            "killed_peak_mb": rss.peak_mb(start=first, end=started) if killed else 0.0,
            "warehouse_peak_mb": rss.peak_mb(start=first, end=publication_start),
            "publication_peak_mb": rss.peak_mb(start=publication_start)}


def _ingest(args: argparse.Namespace) -> dict:
    """Only the ingest assets and their contract checks (priming a warehouse batch by batch)."""
    import dagster as dg

    from pipelines.resources import set_default_environment

    set_default_environment(Path(args.landing), Path(args.out))
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "ingest"]
    result = dg.materialize(list(defs.assets or []) + list(defs.asset_checks or []), selection=keys,
                            resources=defs.resources, instance=dg.DagsterInstance.ephemeral())
    if not result.success:
        raise SystemExit("ingestion failed")
    return {}


def _indicators(args: argparse.Namespace) -> dict:
    """The indicators asset's library alone at scale: staging loaded straight from the converted Parquet (no
    ingest), the mart computed over every delivery before week `--week`, then that week's rows loaded and
    the mart refreshed incrementally. Seconds of each phase.

    The rows the contract rules against the delivery date quarantine are left out (`*_not_after_delivery`:
    the planted future payments would stretch the calendar, and every grid, eight weeks past the newest);
    the converter applies no other rule."""
    import duckdb

    from data_contracts.feeds import FEEDS, staging_columns
    from data_contracts.rules import DELIVERY_END_SQL, rules_for
    from indicators.compute import compute_institution_week_indicators, refresh_institution_week_indicators
    from pipelines.warehouse import connect, create_staging_tables

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "indicators.duckdb").unlink(missing_ok=True)
    con = connect(out / "indicators.duckdb")
    con.execute("SET enable_progress_bar = false")
    create_staging_tables(con)

    def load(newest: bool) -> None:
        for feed in FEEDS.values():
            source = Path(args.parquet) / f"{feed.name}.parquet"
            present = {name for (name,) in duckdb.sql(f"SELECT name FROM parquet_schema('{source}')").fetchall()}
            columns = [c.name for c in staging_columns(feed) if c.name in present]
            on_time = [f"NOT {r.violation_sql}" for r in rules_for(feed.name) if r.name.endswith("_not_after_delivery")]
            con.execute(f"""INSERT INTO staging.{feed.name} BY NAME
                SELECT {', '.join(columns)}, 'bench' AS _file, 0 AS _row, now() AS _loaded_at
                FROM (SELECT *, {DELIVERY_END_SQL} AS _delivery_end
                      FROM read_parquet('{source}'))
                WHERE (strftime(_delivery_date, '%G-W%V') >= '{args.week}') = {newest}
                    {''.join(f' AND {c}' for c in on_time)}""")

    seconds = {}
    for phase, work in (
        ("load_a", lambda: load(False)),
        ("full", lambda: compute_institution_week_indicators(con)),
        ("load_newest_week", lambda: load(True)),
        ("incremental", lambda: refresh_institution_week_indicators(con)),
    ):
        started = time.monotonic()
        result = work()
        seconds[phase] = time.monotonic() - started
        print(f"indicators bench: {phase} {seconds[phase]:.1f} s", flush=True)
    rows = con.execute("SELECT count(*) FROM marts.institution_week_indicators").fetchone()[0]
    return {"seconds": seconds, "mart_rows": rows, "weeks_recomputed": len(result.weeks),
            "first_week_recomputed": result.weeks[0] if result.weeks else None,
            "institutions_recomputed": result.institutions}


def _model(args: argparse.Namespace) -> dict:
    """The model stage alone over a warehouse that holds staging and the mart (`indicators` leaves one in its
    `--out`): training with its backtest, then scoring every week. Seconds and peak RSS of each phase."""
    from bench.profile import RssSampler
    from models.scoring import score_institution_weeks, train_risk_model
    from pipelines.warehouse import connect

    out = Path(args.out)
    con = connect(Path(args.warehouse))
    con.execute("SET enable_progress_bar = false")
    figures, results = {}, {}
    with RssSampler() as rss:
        for phase, work in (("train", lambda: train_risk_model(con, out)),
                            ("score", lambda: score_institution_weeks(con, out))):
            started = rss.sample()
            results[phase] = work()
            rss.sample()
            figures[phase] = {"seconds": time.time() - started, "peak_mb": rss.peak_mb(started)}
            print(f"model bench: {phase} {figures[phase]['seconds']:.1f} s, peak {figures[phase]['peak_mb']:.0f} MB",
                  flush=True)
    return figures | {"trained": results["train"]["trained"], "rows_scored": results["score"]["rows"]}


def _reference(args: argparse.Namespace) -> dict:
    from bench.reference import reference_indicators
    from pipelines.warehouse import connect

    con = connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    reference_indicators(con, Path(args.parquet)).write_parquet(args.result)
    return {}


def _pandas(args: argparse.Namespace) -> dict:
    from bench.pandas_core import PANDAS_CHUNK_ROWS, chunks_for, pandas_indicators

    chunks = chunks_for(Path(args.parquet), PANDAS_CHUNK_ROWS)
    pandas_indicators(Path(args.parquet), chunks).to_parquet(args.result)
    return {"chunks": chunks}


def _convert(args: argparse.Namespace) -> dict:
    from bench.convert import convert_landing

    return {"delivered": convert_landing(Path(args.landing), Path(args.parquet))}


def _generate(args: argparse.Namespace) -> dict:
    from tutorwatch.generator import generate

    summary = generate(scale=args.scale, out=Path(args.out), institutions=args.institutions, weeks=args.weeks)
    return {"summary": summary}


STEPS = {"pipeline": _pipeline, "ingest": _ingest, "indicators": _indicators, "model": _model, "reference": _reference,
         "pandas": _pandas, "convert": _convert, "generate": _generate}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.steps")
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--json", required=True, help="where this step writes its figures")
    for option in ("--landing", "--out", "--warehouse", "--parquet", "--result", "--scale", "--week"):
        parser.add_argument(option)
    parser.add_argument("--institutions", type=int)
    parser.add_argument("--weeks", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    Path(args.json).write_text(json.dumps(STEPS[args.step](args), ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
