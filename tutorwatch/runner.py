"""`tutorwatch run`: every asset of the Dagster definitions over one landing directory.

The warehouse assets (ingest, contracts, indicators, model, warnings) run once over all history; the
publication assets then run once per ISO week partition. Both go through the same definitions that
`dg dev` and the schedules use, on an ephemeral Dagster instance.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg

from data_contracts.feeds import FEED_NAMES, FILE_NAME_PATTERN
from tutorwatch import settings

FIRST_WEEKS_SKIPPED = 12  # the model needs history before a week's list means anything
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # the assets' progress, not every event
REPORTS_ASSET = dg.AssetKey("weekly_reports")  # ~160 MB and ~30 s a week: by default only the newest week
WEEK_RE = re.compile(r"^\d{4}-W\d{2}$")


class LandingUnusable(RuntimeError):
    """The landing directory cannot be processed at all (as opposed to rows being quarantined)."""


def check_landing(landing: Path) -> int:
    """Count the delivery files; refuse a folder that holds none under the standard's feed folders."""
    if not landing.is_dir():
        raise LandingUnusable(f"landing directory {landing} does not exist or is not a folder")
    pattern = re.compile(FILE_NAME_PATTERN)
    files = [p for feed in FEED_NAMES if (landing / feed).is_dir() for p in (landing / feed).iterdir()
             if pattern.match(p.name)]
    if not files:
        raise LandingUnusable(
            f"{landing} holds no delivery files: expected folders {', '.join(FEED_NAMES)} with files named "
            "<feed>_<YYYYMMDD>[_<seq>].csv|parquet (see the interchange standard)"
        )
    if not (landing / "institutions").is_dir():
        raise LandingUnusable(f"{landing} has no institutions/ folder: without filings nothing can be scored")
    return len(files)


def parse_week_range(spec: str | None) -> tuple[str, str] | None:
    if spec is None:
        return None
    first, _, last = spec.partition(":")
    last = last or first
    for week in (first, last):
        if not WEEK_RE.match(week):
            raise LandingUnusable(f"--weeks wants YYYY-Www[:YYYY-Www], got {spec!r}")
    return first, last


def publishable_weeks(con, week_range: tuple[str, str] | None) -> list[str]:
    """Weeks of the indicators mart that ended before the last delivery.

    Without a range: only from the 13th week after the first class or bank movement (orders may be
    back-filled from before the platform's first delivery), because the model and the trailing
    indicators need that much history.
    """
    rows = con.execute(
        f"""
        with weeks as (select distinct week, week_start, week_end from marts.institution_week_indicators),
        last_delivery as (select max(delivery_date) as d from ops.files where status = 'loaded'),
        first_activity as (
            select date_trunc('week', least(
                (select min(consumed_at) from staging.consumptions),
                (select min(booked_at) from staging.account_movements)))::date as d
        )
        select week, week_start >= first_activity.d + interval {FIRST_WEEKS_SKIPPED} week as has_history
        from weeks, last_delivery, first_activity
        where week_end < last_delivery.d
        order by week
        """
    ).fetchall()
    if week_range is None:
        return [week for week, has_history in rows if has_history]
    first, last = week_range
    return [week for week, _ in rows if first <= week <= last]


def _partitioned_keys(defs: dg.Definitions) -> tuple[set[dg.AssetKey], set[dg.AssetKey]]:
    graph = defs.resolve_asset_graph()
    keys = graph.get_all_asset_keys()
    partitioned = {k for k in keys if graph.get(k).partitions_def is not None}
    return keys - partitioned, partitioned


def run(landing: Path, out: Path, warehouse: Path | None = None, weeks: str | None = None,
        all_reports: bool = False, echo: Callable[[str], None] = print) -> list[str]:
    """Process the landing directory; returns the published weeks. Raises LandingUnusable / PiiKeyMissing.

    Lists are published for every week; reports for the newest week only unless `all_reports`.
    """
    started = time.monotonic()
    week_range = parse_week_range(weeks)
    n_files = check_landing(landing)
    settings.pii_key()  # refuse before touching anything when the pseudonymisation key is missing

    from pipelines.resources import set_default_environment

    warehouse = set_default_environment(landing, out, warehouse)
    from pipelines.definitions import defs
    from pipelines.ingest import summary_text
    from pipelines.partitions import iso_week_partitions
    from pipelines.warehouse import connect

    assets = list(defs.assets or []) + list(defs.asset_checks or [])
    resources = defs.resources
    instance = dg.DagsterInstance.ephemeral()
    unpartitioned, partitioned = _partitioned_keys(defs)

    echo(f"tutorwatch: {n_files} delivery files in {landing}; warehouse {warehouse}")
    echo(f"[1/2] ingest, contracts, indicators, model and warnings ({len(unpartitioned)} assets)")
    result = dg.materialize(assets, selection=list(unpartitioned), resources=resources, instance=instance,
                            run_config=QUIET_LOGS)
    if not result.success:
        raise RuntimeError("the warehouse run failed; see the log above")

    with connect(warehouse, read_only=True) as con:
        to_publish = publishable_weeks(con, week_range)
        summary = summary_text(con)
    echo(f"[2/2] publication for {len(to_publish)} weeks"
         + (f" ({to_publish[0]} … {to_publish[-1]})" if to_publish else ""))
    instance.add_dynamic_partitions(iso_week_partitions.name, to_publish)
    for i, week in enumerate(to_publish, 1):
        with_reports = all_reports or i == len(to_publish)
        selection = partitioned if with_reports else partitioned - {REPORTS_ASSET}
        echo(f"  publishing {week} ({i}/{len(to_publish)}){' with reports' if with_reports else ''}")
        result = dg.materialize(assets, selection=list(selection), resources=resources, instance=instance,
                                partition_key=week, run_config=QUIET_LOGS)
        if not result.success:
            raise RuntimeError(f"publication of {week} failed; see the log above")

    echo(summary)
    echo(f"Warning lists: {out / 'warnings'}")
    echo(f"Reports:       {out / 'reports'}")
    echo(f"Warehouse:     {warehouse}")
    echo(f"Done in {time.monotonic() - started:.0f} s.")
    return to_publish
