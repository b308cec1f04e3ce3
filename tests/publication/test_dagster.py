"""The publication assets through real Dagster materialisation, and the Monday schedule."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
from publication_fixtures import add_rows

from pipelines.defs.publication.assets import (
    newest_complete_week, warning_lists, weekly_publication_schedule, weekly_reports,
)
from pipelines.defs.publication.warnings import warnings
from pipelines.partitions import iso_week_partitions
from pipelines.resources import FoldersResource, WarehouseResource
from pipelines.warehouse import connect

A = "91440104MA5AAAAA1A"


def test_assets_publish_a_week_partition(warehouse, tmp_path):
    add_rows(warehouse, [dict(institution_id=A, week="2026-W10", province_code="44", coverage_ratio=0.3)])
    warehouse.close()  # Dagster opens the file itself
    resources = {"duckdb": WarehouseResource(database=str(tmp_path / "warehouse.duckdb")),
                 "folders": FoldersResource(landing_dir=str(tmp_path / "landing"), out_dir=str(tmp_path / "out"))}
    instance = dg.DagsterInstance.ephemeral()
    assets = [warnings, warning_lists, weekly_reports]
    result = dg.materialize(assets, selection=[warnings], resources=resources, instance=instance)
    assert result.success
    assert result.asset_materializations_for_node("warnings")[0].metadata["rows"].value == 1
    instance.add_dynamic_partitions(iso_week_partitions.name, ["2026-W10"])
    result = dg.materialize(assets, selection=[warning_lists, weekly_reports], resources=resources,
                            instance=instance, partition_key="2026-W10")
    assert result.success
    assert (tmp_path / "out" / "warnings" / "2026-W10" / "44.csv").exists()
    assert (tmp_path / "out" / "reports" / "2026-W10" / "44.pdf").exists()
    with connect(tmp_path / "warehouse.duckdb", read_only=True) as con:
        assert con.execute("select tier from marts.warnings").fetchall() == [("red",)]


def test_newest_complete_week_is_the_week_before_the_run():
    shanghai = ZoneInfo("Asia/Shanghai")
    assert newest_complete_week(datetime(2026, 3, 9, 6, 0, tzinfo=shanghai)) == "2026-W10"  # Monday of W11
    assert newest_complete_week(datetime(2026, 1, 5, 6, 0, tzinfo=shanghai)) == "2026-W01"
    assert newest_complete_week(datetime(2027, 1, 4, 6, 0, tzinfo=shanghai)) == "2026-W53"


def test_schedule_adds_and_requests_last_weeks_partition():
    assert weekly_publication_schedule.cron_schedule == "0 6 * * 1"
    assert weekly_publication_schedule.execution_timezone == "Asia/Shanghai"
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 3, 9, 6, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
        request = weekly_publication_schedule(context)
        assert request.partition_key == "2026-W10"
        assert instance.get_dynamic_partitions(iso_week_partitions.name) == ["2026-W10"]
