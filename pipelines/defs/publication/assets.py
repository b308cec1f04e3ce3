"""Publication assets: thin wrappers around `pipelines.publish` (the warnings mart is in warnings.py)."""

import os
from datetime import datetime, timedelta

import dagster as dg

from pipelines.partitions import iso_week_partitions
from pipelines.publish import publish_week, write_reports
from pipelines.resources import FoldersResource, WarehouseResource

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

PUBLICATION_TZ = "Asia/Shanghai"
WARNINGS = dg.AssetKey("warnings")  # pipelines/defs/publication/warnings.py


@dg.asset(
    group_name="publication",
    partitions_def=iso_week_partitions,
    deps=[WARNINGS],
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
    deps=[WARNINGS],
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
