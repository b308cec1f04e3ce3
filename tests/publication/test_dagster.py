"""The publication assets through real Dagster materialisation, the Monday schedule, the national follow-up."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from publication_fixtures import add_rows

from data_contracts.regions import PROVINCE_CODES
from pipelines.defs.publication.assets import (
    newest_complete_week, province_publication_job, province_reports, province_warning_lists, warning_lists,
    weekly_publication_schedule, weekly_reports,
)
from pipelines.defs.publication.warnings import warnings
from pipelines.partitions import iso_week_partitions, week_province_key
from pipelines.resources import FoldersResource, WarehouseResource
from pipelines.warehouse import FRAMES_SHARE, connect
from tutorwatch import settings

A = "91440104MA5AAAAA1A"
W10 = "2026-W10"
ASSETS = [warnings, province_warning_lists, province_reports, warning_lists, weekly_reports]


def test_assets_publish_a_province_partition_and_the_national_files(warehouse, tmp_path):
    add_rows(warehouse, [dict(institution_id=A, week=W10, province_code="44", coverage_ratio=0.3)])
    warehouse.close()  # Dagster opens the file itself
    resources = {"duckdb": WarehouseResource(database=str(tmp_path / "warehouse.duckdb")),
                 "folders": FoldersResource(landing_dir=str(tmp_path / "landing"), out_dir=str(tmp_path / "out"))}
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(ASSETS, selection=[warnings], resources=resources, instance=instance)
    assert result.success
    assert result.asset_materializations_for_node("warnings")[0].metadata["rows"].value == 1
    instance.add_dynamic_partitions(iso_week_partitions.name, [W10])

    result = dg.materialize(ASSETS, selection=[province_warning_lists, province_reports], resources=resources,
                            instance=instance, partition_key=week_province_key(W10, "44"))
    assert result.success
    metadata = result.asset_materializations_for_node("province_warning_lists")[0].metadata
    assert (metadata["rows"].value, metadata["revision"].value, metadata["written"].value) == (1, 1, True)
    week_files = {p.name for p in (tmp_path / "out" / "warnings" / W10).iterdir()}
    assert week_files == {"44.csv", "44.xlsx", "44.manifest.json"}  # this partition's files only
    assert {p.name for p in (tmp_path / "out" / "reports" / W10).iterdir()} == {"44.html", "44.pdf"}

    result = dg.materialize(ASSETS, selection=[province_warning_lists], resources=resources, instance=instance,
                            partition_key=week_province_key(W10, "11"))  # no institution in Beijing that week
    assert result.asset_materializations_for_node("province_warning_lists")[0].metadata["rows"].value == 0
    assert not (tmp_path / "out" / "warnings" / W10 / "11.csv").exists()

    result = dg.materialize(ASSETS, selection=[warning_lists, weekly_reports], resources=resources,
                            instance=instance, partition_key=W10)
    assert result.success
    assert (tmp_path / "out" / "warnings" / W10 / "all.csv").read_text(encoding="utf-8-sig").count(A) == 1
    assert (tmp_path / "out" / "reports" / W10 / "national.html").exists()
    with connect(tmp_path / "warehouse.duckdb", read_only=True) as con:
        assert con.execute("select tier from marts.warnings").fetchall() == [("red",)]


def test_the_warnings_are_built_while_duckdb_holds_a_smaller_share(warehouse, tmp_path, monkeypatch, duckdb_limit):
    """The rule flags come to Python a block of weeks at a time beside DuckDB's cache of the mart: the national
    warnings alone peaked at 3,020 MiB with its whole share, 1,688 with a quarter of the budget, as fast."""
    from pipelines.defs.publication import warnings as module

    add_rows(warehouse, [dict(institution_id=A, week=W10, province_code="44", coverage_ratio=0.3)])
    warehouse.close()
    monkeypatch.setenv(settings.ENV_MEMORY_LIMIT, "4GB")
    seen, refresh = [], module.refresh_warnings

    def recorded(con, **kwargs):
        seen.append(duckdb_limit(con))
        return refresh(con, **kwargs)

    monkeypatch.setattr(module, "refresh_warnings", recorded)
    resources = {"duckdb": WarehouseResource(database=str(tmp_path / "warehouse.duckdb"))}
    assert dg.materialize([warnings], resources=resources).success
    assert seen == [pytest.approx(4 * 10**9 * FRAMES_SHARE, rel=0.05)]


def test_newest_complete_week_is_the_week_before_the_run():
    shanghai = ZoneInfo("Asia/Shanghai")
    assert newest_complete_week(datetime(2026, 3, 9, 6, 0, tzinfo=shanghai)) == "2026-W10"  # Monday of W11
    assert newest_complete_week(datetime(2026, 1, 5, 6, 0, tzinfo=shanghai)) == "2026-W01"
    assert newest_complete_week(datetime(2027, 1, 4, 6, 0, tzinfo=shanghai)) == "2026-W53"


def test_schedule_adds_last_week_and_requests_every_province_of_it():
    assert weekly_publication_schedule.cron_schedule == "0 6 * * 1"
    assert weekly_publication_schedule.execution_timezone == "Asia/Shanghai"
    assert weekly_publication_schedule.job_name == province_publication_job.name
    monday = datetime(2026, 3, 9, 6, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    with dg.instance_for_test() as instance, dg.build_schedule_context(  # `with`: leaves no instance behind
            instance=instance, scheduled_execution_time=monday) as context:
        requests = weekly_publication_schedule(context)
        assert instance.get_dynamic_partitions(iso_week_partitions.name) == [W10]
    assert len(requests) == 32 == len({r.run_key for r in requests})
    assert {r.partition_key for r in requests} == {week_province_key(W10, p) for p in PROVINCE_CODES}


def test_national_files_follow_once_every_province_of_the_week_is_in():
    """The automation condition requests the week's national partition after the 32nd province, not before."""
    defs = dg.Definitions(assets=ASSETS, resources={  # never opened: conditions are evaluated, not run
        "duckdb": WarehouseResource(database="unused.duckdb"),
        "folders": FoldersResource(landing_dir="unused", out_dir="unused")})

    def province_done(instance, province):
        for asset in (province_warning_lists, province_reports):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset.key, partition=str(week_province_key(W10, province))))

    def requested(result):
        return {k.to_user_string(): set(result.get_requested_partitions(k))
                for k in (warning_lists.key, weekly_reports.key)}

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(iso_week_partitions.name, [W10])
        instance.report_runless_asset_event(dg.AssetMaterialization(warnings.key))
        for province in PROVINCE_CODES[:-1]:
            province_done(instance, province)
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert requested(first) == {"warning_lists": set(), "weekly_reports": set()}
        province_done(instance, PROVINCE_CODES[-1])
        second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        assert requested(second) == {"warning_lists": {W10}, "weekly_reports": {W10}}
        third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
        assert requested(third) == {"warning_lists": set(), "weekly_reports": set()}  # requested once
