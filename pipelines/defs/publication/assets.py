"""Publication assets: thin wrappers around `indicators.rules` and `pipelines.publish`."""

import os
from datetime import datetime, timedelta

import dagster as dg

from indicators.rules import build_warnings
from pipelines.partitions import iso_week_partitions
from pipelines.publish import publish_week, write_reports
from pipelines.resources import FoldersResource, WarehouseResource

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

PUBLICATION_TZ = "Asia/Shanghai"


@dg.asset(
    group_name="publication",
    kinds={"duckdb"},
    deps=[dg.AssetKey("institution_week_indicators"), dg.AssetKey("institution_week_scores")],
    description="marts.warnings (listed institution-weeks with tier, score, reasons, change) and warning_drops.",
)
def warnings(duckdb: WarehouseResource) -> dg.MaterializeResult:
    """Every week is rebuilt: late rows and a new model change past weeks' tiers and changes."""
    with duckdb.get_connection() as con:
        rows = build_warnings(con)
        by_tier = dict(con.execute("select tier, count(*) from marts.warnings group by tier").fetchall())
        drops = con.execute("select count(*) from marts.warning_drops").fetchone()[0]
    return dg.MaterializeResult(metadata={"rows": rows, "drops": drops, **{f"rows_{t}": n for t, n in by_tier.items()}})


@dg.asset(
    group_name="publication",
    partitions_def=iso_week_partitions,
    deps=[warnings],
    kinds={"csv", "excel"},
    description="Per-province warning lists <out>/warnings/<week>/ (immutable; changes go to revN/).",
)
def warning_lists(context: dg.AssetExecutionContext, duckdb: WarehouseResource,
                  folders: FoldersResource) -> dg.MaterializeResult:
    with duckdb.get_connection(read_only=True) as con:
        result = publish_week(con, folders.out, context.partition_key)
    return dg.MaterializeResult(metadata={
        "rows": sum(result.rows.values()), "provinces": len(result.rows), "revision": result.revision,
        "written": result.written, "directory": dg.MetadataValue.path(str(result.directory)),
    })


@dg.asset(
    group_name="publication",
    partitions_def=iso_week_partitions,
    deps=[warnings],
    kinds={"html", "pdf"},
    description="National and provincial weekly reports <out>/reports/<week>/ (HTML with plotly, PDF).",
)
def weekly_reports(context: dg.AssetExecutionContext, duckdb: WarehouseResource,
                   folders: FoldersResource) -> dg.MaterializeResult:
    with duckdb.get_connection(read_only=True) as con:
        files = write_reports(con, folders.out, context.partition_key)
    return dg.MaterializeResult(metadata={"files": len(files),
                                          "directory": dg.MetadataValue.path(str(files[0].parent))})


publication_job = dg.define_asset_job(
    "weekly_publication", selection=[warning_lists, weekly_reports], partitions_def=iso_week_partitions,
)


def newest_complete_week(now: datetime) -> str:
    """The ISO week that ended before `now` (a Monday-morning run publishes last week)."""
    return (now - timedelta(days=now.isoweekday())).strftime("%G-W%V")


@dg.schedule(job=publication_job, cron_schedule="0 6 * * 1", execution_timezone=PUBLICATION_TZ)
def weekly_publication_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Monday 06:00 Shanghai: add last week's partition and publish it."""
    week = newest_complete_week(context.scheduled_execution_time)
    context.instance.add_dynamic_partitions(iso_week_partitions.name, [week])
    return dg.RunRequest(run_key=week, partition_key=week)
