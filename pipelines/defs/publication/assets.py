"""Publication assets: thin wrappers around `pipelines.publish` (the warnings mart is in warnings.py).

Per-province files are (week, province) partitions, so the provinces of a week publish in parallel runs;
the national files are week partitions depending on every province of their week. All of them only read
the warehouse (read-only connections, any number at once) and each partition writes its own files.

Each asset also accepts a run over a range of partitions (a rectangle of weeks × provinces: `tutorwatch run`
publishes a week's lists in one run, since Dagster's run set-up costs more than publishing a list) and
records each partition's own metadata (`add_asset_metadata(..., partition_key=...)`).
"""

import os
from datetime import datetime, timedelta

import dagster as dg

from data_contracts.regions import PROVINCE_CODES
from pipelines.partitions import (
    iso_week_partitions, provinces_of_the_week, week_province_key, week_province_partitions,
)
from pipelines.publish import publish_national, publish_province, write_national_report, write_province_report
from pipelines.resources import FoldersResource, WarehouseResource

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

PUBLICATION_TZ = "Asia/Shanghai"
ENV_EXECUTOR = "TUTORWATCH_EXECUTOR"
WARNINGS = dg.AssetKey("warnings")  # pipelines/defs/publication/warnings.py
# The national files follow once every province of their week is in (the automation sensor in `dg dev` or
# a deployment with the daemon; `tutorwatch run` requests them itself).
AFTER_THE_PROVINCES = dg.AutomationCondition.eager()


def _week_provinces(context: dg.AssetExecutionContext):
    """(partition key, week, province) of every partition of the run (one, or a range)."""
    for key in context.partition_keys:
        dimensions = week_province_partitions.get_partition_key_from_str(str(key)).keys_by_dimension
        yield key, dimensions["week"], dimensions["province"]


def _list_metadata(result) -> dict:
    if result is None:
        return {"rows": 0, "written": False, "revision": 0}
    return {"rows": result.rows, "written": result.written, "revision": result.revision,
            "directory": dg.MetadataValue.path(str(result.directory))}


@dg.asset(
    group_name="publication",
    partitions_def=week_province_partitions,
    deps=[WARNINGS],
    kinds={"csv", "excel"},
    description="A province's list <out>/warnings/<week>/<province>.csv|.xlsx (immutable; changes go to revN/).",
)
def province_warning_lists(context: dg.AssetExecutionContext, duckdb: WarehouseResource,
                           folders: FoldersResource) -> dg.MaterializeResult:
    with duckdb.get_connection(read_only=True) as con:
        for key, week, province in _week_provinces(context):
            context.add_asset_metadata(_list_metadata(publish_province(con, folders.out, week, province)),
                                       partition_key=key)
    return dg.MaterializeResult()


@dg.asset(
    group_name="publication",
    partitions_def=iso_week_partitions,
    deps=[dg.AssetDep("province_warning_lists", partition_mapping=provinces_of_the_week)],
    automation_condition=AFTER_THE_PROVINCES,
    kinds={"csv"},
    description="The national list <out>/warnings/<week>/all.csv (immutable; changes go to revN/).",
)
def warning_lists(context: dg.AssetExecutionContext, duckdb: WarehouseResource,
                  folders: FoldersResource) -> dg.MaterializeResult:
    with duckdb.get_connection(read_only=True) as con:
        for week in context.partition_keys:
            context.add_asset_metadata(_list_metadata(publish_national(con, folders.out, week)), partition_key=week)
    return dg.MaterializeResult()


@dg.asset(
    group_name="publication",
    partitions_def=week_province_partitions,
    deps=[WARNINGS],
    kinds={"html", "pdf"},
    description="A province's weekly report <out>/reports/<week>/<province>.html (plotly) and .pdf.",
)
def province_reports(context: dg.AssetExecutionContext, duckdb: WarehouseResource,
                     folders: FoldersResource) -> dg.MaterializeResult:
    with duckdb.get_connection(read_only=True) as con:
        for key, week, province in _week_provinces(context):
            files = write_province_report(con, folders.out, week, province)
            context.add_asset_metadata({"files": len(files)}, partition_key=key)
    return dg.MaterializeResult()


@dg.asset(
    group_name="publication",
    partitions_def=iso_week_partitions,
    deps=[dg.AssetDep("province_reports", partition_mapping=provinces_of_the_week)],
    automation_condition=AFTER_THE_PROVINCES,
    kinds={"html"},
    description="The national weekly report <out>/reports/<week>/national.html (plotly).",
)
def weekly_reports(context: dg.AssetExecutionContext, duckdb: WarehouseResource,
                   folders: FoldersResource) -> dg.MaterializeResult:
    with duckdb.get_connection(read_only=True) as con:
        for week in context.partition_keys:
            path = write_national_report(con, folders.out, week)
            context.add_asset_metadata({"path": dg.MetadataValue.path(str(path))}, partition_key=week)
    return dg.MaterializeResult()


def publication_executor() -> dg.ExecutorDefinition:
    """In the run's process by default: a run publishes one small partition, and a process per step would
    triple its time. With TUTORWATCH_EXECUTOR=celery the steps go to Celery workers on any machine
    (broker and backend from TUTORWATCH_CELERY_BROKER / _BACKEND; see docs/scale-out.md)."""
    if os.environ.get(ENV_EXECUTOR) != "celery":
        return dg.in_process_executor
    from dagster_celery import celery_executor

    return celery_executor.configured({"broker": {"env": "TUTORWATCH_CELERY_BROKER"},
                                       "backend": {"env": "TUTORWATCH_CELERY_BACKEND"}})


province_publication_job = dg.define_asset_job(
    "province_publication", selection=[province_warning_lists, province_reports],
    partitions_def=week_province_partitions, executor_def=publication_executor(),
)
publication_job = dg.define_asset_job(
    "weekly_publication", selection=[warning_lists, weekly_reports], partitions_def=iso_week_partitions,
    executor_def=publication_executor(),
)


def newest_complete_week(now: datetime) -> str:
    """The ISO week that ended before `now` (a Monday-morning run publishes last week)."""
    return (now - timedelta(days=now.isoweekday())).strftime("%G-W%V")


@dg.schedule(job=province_publication_job, cron_schedule="0 6 * * 1", execution_timezone=PUBLICATION_TZ)
def weekly_publication_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    """Monday 06:00 Shanghai: add last week's partition and request every province of it (one run each,
    run in parallel by the run queue); the national files follow through their automation condition."""
    week = newest_complete_week(context.scheduled_execution_time)
    context.instance.add_dynamic_partitions(iso_week_partitions.name, [week])
    return [dg.RunRequest(run_key=f"{week}|{p}", partition_key=week_province_key(week, p))
            for p in PROVINCE_CODES]
