"""`tutorwatch run`: every asset of the Dagster definitions over one landing directory.

The warehouse assets (ingest, contracts, indicators, model, warnings) run once over all history, in one
process (DuckDB has one writer), as the `warehouse` job on an instance kept in OUT/dagster: a run that was
killed or failed continues from its first unfinished step with `resume` (a national run takes hours).
Publication then only reads the warehouse, so its (week, province) partitions and the weeks' national
files run in `jobs` worker processes at once, as runs of the same definitions that `dg dev` and the
schedules use (ephemeral instances), each run a range of partitions (`Batch`: e.g. every province of a
week) with each partition's own materialisation and metadata.
Only lists whose week was rebuilt since their publication are published again (`stale_lists`).
"""

from __future__ import annotations

import fcntl
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import dagster as dg
from dagster._core.execution.stats import RunStepKeyStatsSnapshot, StepEventStatus
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from data_contracts.feeds import FEED_NAMES, FILE_NAME_PATTERN
from indicators.rules import first_listed_week
from pipelines.defs.warehouse import WAREHOUSE_JOB
from tutorwatch import settings

FIRST_WEEKS_SKIPPED = 12  # the model needs history before a week's list means anything
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}  # the assets' progress, not every event
PARTITION_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # hundreds of runs: failures only
ENV_JOBS = settings.ENV_JOBS
# Below this many partitions one process is quicker: a list costs ~0.1 s and a report ~0.6 s here, while
# workers first import the definitions (~5 s of CPU each, more on a loaded machine).
PARALLEL_FROM = 24
DEFAULT_JOBS = 2
BATCHES_PER_WORKER = 4
PROVINCE_ASSETS = ("province_warning_lists", "province_reports")
NATIONAL_ASSETS = ("warning_lists", "weekly_reports")
WEEK_RE = re.compile(r"^\d{4}-W\d{2}$")
DAGSTER_FOLDER = "dagster"  # OUT/dagster: the warehouse runs' event log
# Kept on disk for --resume; step output is not captured to files (the console shows it already).
INSTANCE_SETTINGS = {"telemetry": {"enabled": False},
                     "compute_logs": {"module": "dagster._core.storage.noop_compute_log_manager",
                                      "class": "NoOpComputeLogManager"}}


class RunRefused(RuntimeError):
    """The run cannot start (nothing has been changed)."""


class LandingUnusable(RunRefused):
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

    Without a range: only from the 13th week after `indicators.rules.first_listed_week` (orders may be
    back-filled from before the bank and consumption feeds begin), because the model and the trailing
    indicators need that much history.
    """
    listed_from = first_listed_week(con)
    rows = con.execute(
        f"""
        with weeks as (select distinct week, week_start, week_end from marts.institution_week_indicators),
        last_delivery as (select max(delivery_date) as d from ops.files where status = 'loaded')
        select week, week_start >= $first::date + interval {FIRST_WEEKS_SKIPPED} week as has_history
        from weeks, last_delivery
        where week_end < last_delivery.d
        order by week
        """, {"first": date.fromisocalendar(int(listed_from[:4]), int(listed_from[6:]), 1) if listed_from else None}
    ).fetchall()
    if week_range is None:
        return [week for week, has_history in rows if has_history]
    first, last = week_range
    return [week for week, _ in rows if first <= week <= last]


@dataclass(frozen=True)
class Partition:
    """One unit of publication: a (week, province) partition, or a week's national files (province None)."""

    week: str
    province: str | None
    assets: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.week} {self.province or 'national'}"


def publication_plan(con, out: Path, weeks: list[str], report_weeks: Iterable[str]) -> list[Partition]:
    """Stale lists (never published, or rebuilt since) and the reports of `report_weeks`, provinces first."""
    from pipelines.publish import NATIONAL, stale_lists, week_lists

    stale, report_weeks = set(stale_lists(con, out, weeks)), set(report_weeks)
    plan = []
    for week, name in week_lists(con, weeks):
        list_asset, report_asset = NATIONAL_ASSETS if name == NATIONAL else PROVINCE_ASSETS
        assets = (list_asset,) * ((week, name) in stale) + (report_asset,) * (week in report_weeks)
        if assets:
            plan.append(Partition(week, None if name == NATIONAL else name, assets))
    return sorted(plan, key=lambda p: p.province is None)


@dataclass(frozen=True)
class Batch:
    """Partitions published in one Dagster run: consecutive weeks × consecutive provinces (or consecutive weeks
    of the national files) with the same assets, i.e. a partition key range of the assets. A run costs
    ~0.2-0.4 s of Dagster set-up, more than publishing a list."""

    weeks: tuple[str, ...]
    provinces: tuple[str, ...] | None  # None: the national files
    assets: tuple[str, ...]

    @property
    def partitions(self) -> list[Partition]:
        return [Partition(w, p, self.assets) for w in self.weeks for p in (self.provinces or (None,))]

    @property
    def label(self) -> str:
        weeks = self.weeks[0] if len(self.weeks) == 1 else f"{self.weeks[0]}…{self.weeks[-1]}"
        if self.provinces is None:
            return f"{weeks} national"
        return f"{weeks} {self.provinces[0]}" + (f"–{self.provinces[-1]}" if len(self.provinces) > 1 else "")

    def run_keys(self) -> dict:
        """`partition_key` of a single partition, the range tags of several."""
        from pipelines.partitions import week_province_key

        def key(week: str, province: str | None) -> str:
            return week if province is None else week_province_key(week, province)

        first, last = self.partitions[0], self.partitions[-1]
        if first == last:
            return {"partition_key": key(first.week, first.province)}
        return {"tags": {ASSET_PARTITION_RANGE_START_TAG: str(key(first.week, first.province)),
                         ASSET_PARTITION_RANGE_END_TAG: str(key(last.week, last.province))}}


def _consecutive(items: Iterable, order: Iterable) -> list[tuple]:
    """`items` cut into runs that are consecutive in `order` (a repeated item starts a new run)."""
    index = {item: i for i, item in enumerate(order)}
    runs: list[list] = []
    for item in sorted(items, key=index.__getitem__):
        if runs and index[item] == index[runs[-1][-1]] + 1:
            runs[-1].append(item)
        else:
            runs.append([item])
    return [tuple(run) for run in runs]


def _chunks(items: tuple, size: int) -> list[tuple]:
    """`items` in as few pieces of at most `size` as possible, of even sizes (32 provinces by 21: 16 and 16, not
    21 and 11: the newest week's reports are the bulk of a weekly publication, split between the workers)."""
    pieces = math.ceil(len(items) / size)
    bounds = [-(-i * len(items) // pieces) for i in range(pieces + 1)]
    return [items[a:b] for a, b in zip(bounds, bounds[1:])]


def batch_plan(plan: list[Partition], most: int) -> list[Batch]:
    """The plan as rectangles of at most `most` partitions, provinces first, then by week.

    Weeks are consecutive in the sorted weeks of the plan: every instance that runs the batches holds exactly
    those weeks as `iso_week` partitions, added in that order (`_add_weeks`), so a range covers no other week.
    """
    from data_contracts.regions import PROVINCE_CODES

    weeks = sorted({p.week for p in plan})
    provinces_of: dict[tuple, list] = defaultdict(list)  # (assets, week) -> provinces, or [None] (national)
    for p in plan:
        provinces_of[(p.assets, p.week)].append(p.province)
    weeks_of: dict[tuple, list[str]] = defaultdict(list)  # (assets, run of provinces or None) -> weeks
    for (assets, week), provinces in provinces_of.items():
        runs = [None] * provinces.count(None) + _consecutive([p for p in provinces if p], PROVINCE_CODES)
        for run in runs:
            weeks_of[(assets, run)].append(week)
    batches = []
    for (assets, provinces), run_weeks in weeks_of.items():
        per_week = min(len(provinces or (None,)), most)
        for province_chunk in _chunks(provinces, per_week) if provinces else [None]:
            for week_run in _consecutive(run_weeks, weeks):
                batches += [Batch(chunk, province_chunk, assets) for chunk in _chunks(week_run, most // per_week)]
    return sorted(batches, key=lambda b: (b.provinces is None, b.weeks[0], b.provinces or ()))


@cache
def _publication_job(assets: tuple[str, ...]) -> dg.JobDefinition:
    """The job `dg.materialize(assets, selection=assets)` builds, built once per process: rebuilding it for each
    of a first run's ~1,300 partitions cost more than publishing the list. Built from the publication package
    alone (its upstream assets are only keys here): a worker that imported the whole code location paid ~2 s
    more, mostly scikit-learn for the model assets it never runs."""
    from pipelines.defs import publication
    from pipelines.resources import default_resources

    with warnings.catch_warnings():  # package-module loading is "preview", as in pipelines/definitions.py
        warnings.simplefilter("ignore", dg.PreviewWarning)
        definitions = dg.load_definitions_from_package_module(publication)
    job = dg.define_asset_job(name="__ephemeral_asset_job__", selection=list(assets))
    return dg.Definitions(jobs=[job], assets=list(definitions.assets or []),
                          resources=default_resources()).resolve_job_def(job.name)


def _add_weeks(instance: dg.DagsterInstance, weeks: list[str]) -> None:
    from pipelines.partitions import iso_week_partitions

    instance.add_dynamic_partitions(iso_week_partitions.name, sorted(weeks))


def _materialise(batch: Batch, instance: dg.DagsterInstance) -> bool:
    return _publication_job(batch.assets).execute_in_process(
        instance=instance, run_config=PARTITION_LOGS, raise_on_error=False, **batch.run_keys()).success


def publish_batch(batch: Batch, instance: dg.DagsterInstance) -> tuple[Batch, dict[Partition, bool], float]:
    """Materialise a batch in one run on `instance` (which holds the plan's weeks); when that run fails, each
    of its partitions in a run of its own, so that the failed ones are named and the others still publish.
    (batch, success of each partition, seconds)."""
    started = time.monotonic()
    partitions = batch.partitions
    if _materialise(batch, instance):
        outcome = dict.fromkeys(partitions, True)
    elif len(partitions) == 1:
        outcome = {partitions[0]: False}
    else:
        outcome = {p: _materialise(Batch((p.week,), p.province and (p.province,), p.assets), instance)
                   for p in partitions}
    return batch, outcome, time.monotonic() - started


_worker_instance: dg.DagsterInstance | None = None  # one per worker process (creating one costs ~0.2 s)


def _publish_in_worker(batch: Batch) -> tuple[Batch, dict[Partition, bool], float]:
    return publish_batch(batch, _worker_instance)


def _init_worker(env: dict[str, str], weeks: list[str]) -> None:
    """This run's folders and weeks; and die with the run: a killed `tutorwatch run` must not leave a worker
    writing files behind it (nor, through the worker, its fork server)."""
    global _worker_instance
    os.environ.update(env)
    _worker_instance = dg.DagsterInstance.ephemeral()
    _add_weeks(_worker_instance, weeks)
    threading.Thread(target=_exit_with_the_run, daemon=True).start()


def _exit_with_the_run() -> None:
    multiprocessing.connection.wait([multiprocessing.parent_process().sentinel])  # ready once it is gone
    os._exit(1)


def _worker_context() -> multiprocessing.context.ForkServerContext:
    """Workers fork from a fork server (as in Dagster's multiprocess executor): forking this process would
    copy its threads' locks. Each worker imports the definitions itself on its first partition; a fork
    server that preloaded them would hold Dagster's threads and outlive a killed run."""
    return multiprocessing.get_context("forkserver")


def run_batches(plan: list[Partition], jobs: int) -> Iterator[tuple[Batch, dict[Partition, bool], float]]:
    """Publish the plan in batches (`batch_plan`), `jobs` at a time in worker processes (in this process when
    jobs is 1). With workers, the plan is cut into ~BATCHES_PER_WORKER batches per worker so that they share
    the work.

    Workers take the folders from this process's environment: the fork server lives as long as this
    process and would otherwise keep the environment of the first run.
    """
    weeks = sorted({p.week for p in plan})
    most = math.ceil(len(plan) / (jobs * BATCHES_PER_WORKER)) if jobs > 1 else len(plan)
    # the province reports first: the longest batches (a PDF per province) taken first end together
    batches = sorted(batch_plan(plan, max(most, 1)),
                     key=lambda b: (b.provinces is None, PROVINCE_ASSETS[1] not in b.assets))
    if jobs <= 1 or len(batches) <= 1:
        with dg.DagsterInstance.ephemeral() as instance:  # closed with the run: none outlives a test's context
            _add_weeks(instance, weeks)
            yield from (publish_batch(b, instance) for b in batches)
        return
    env = {k: v for k, v in os.environ.items() if k.startswith("TUTORWATCH_")}
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_worker_context(), initializer=_init_worker,
                               initargs=(env, weeks))
    try:
        yield from (f.result() for f in as_completed([pool.submit(_publish_in_worker, b) for b in batches]))
    finally:  # on an error or Ctrl-C, do not start the batches still waiting
        pool.shutdown(cancel_futures=True)


def open_instance(out: Path) -> dg.DagsterInstance:
    """The instance that holds OUT's warehouse runs (also read by the benchmark for its per-step profile)."""
    folder = out / DAGSTER_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.local_temp(str(folder), overrides=INSTANCE_SETTINGS)


@contextmanager
def holding(out: Path) -> Iterator[dg.DagsterInstance]:
    """OUT's instance, for one run at a time: a second run on the same OUT would find the warehouse locked
    half-way, or resume a run that is still going."""
    (out / DAGSTER_FOLDER).mkdir(parents=True, exist_ok=True)
    with open(out / DAGSTER_FOLDER / "run.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunRefused(f"another tutorwatch run is using {out}; wait for it to finish") from None
        with open_instance(out) as instance:
            yield instance


def finished_steps(instance: dg.DagsterInstance, run_id: str) -> list[RunStepKeyStatsSnapshot]:
    return [s for s in instance.get_run_step_stats(run_id) if s.status == StepEventStatus.SUCCESS]


def run_warehouse(instance: dg.DagsterInstance, resume: bool, echo: Callable[[str], None]) -> None:
    """The warehouse job; with `resume`, the last warehouse run re-executed from its first unfinished step
    (nothing when it finished: publication follows). A run still marked as started was killed: `holding`
    shows that no process is running it."""
    from pipelines.definitions import warehouse_job

    options = None
    if resume:
        last = next(iter(instance.get_runs(filters=dg.RunsFilter(job_name=WAREHOUSE_JOB), limit=1)), None)
        if last is None:
            raise RunRefused("nothing to resume: this OUT folder holds no earlier run; run without --resume")
        if last.status == dg.DagsterRunStatus.SUCCESS:
            echo(f"  the warehouse run {last.run_id[:8]} had finished: on to publication")
            return
        if not last.is_finished:
            instance.report_run_failed(last)
        options = dg.ReexecutionOptions.from_failure(last.run_id, instance)
        echo(f"  resuming the warehouse run {last.run_id[:8]} ({last.status.value}): "
             f"{len(finished_steps(instance, last.run_id))} steps had finished")
    result = dg.execute_job(dg.reconstructable(warehouse_job), instance, run_config=QUIET_LOGS,
                            reexecution_options=options)
    if not result.success:
        raise RuntimeError("the warehouse run failed; see the log above (tutorwatch run --resume continues it)")


def default_jobs() -> int:
    return int(os.environ.get(ENV_JOBS, DEFAULT_JOBS))


def run(landing: Path, out: Path, warehouse: Path | None = None, weeks: str | None = None,
        all_reports: bool = False, jobs: int | None = None, echo: Callable[[str], None] = print,
        resume: bool = False) -> list[str]:
    """Process the landing directory; returns the publishable weeks. Raises RunRefused / PiiKeyMissing.

    Lists are published for every publishable week whose lists are stale; reports for the newest week
    only unless `all_reports`. `jobs` worker processes publish at once (default TUTORWATCH_JOBS or 2) when
    there are at least PARALLEL_FROM partitions.
    """
    started = time.monotonic()
    jobs = jobs or default_jobs()
    week_range = parse_week_range(weeks)
    n_files = check_landing(landing)
    settings.pii_key()  # refuse before touching anything when the pseudonymisation key is missing

    from pipelines.resources import set_default_environment

    warehouse = set_default_environment(landing, out, warehouse)
    from pipelines.ingest import summary_text
    from pipelines.warehouse import connect

    echo(f"tutorwatch: {n_files} delivery files in {landing}; warehouse {warehouse}")
    with holding(out) as instance:
        echo("[1/2] ingest, contracts, indicators, model and warnings")
        run_warehouse(instance, resume, echo)
        with connect(warehouse, read_only=True) as con:
            to_publish = publishable_weeks(con, week_range)
            # reports cost ~160 MB and ~30 s a week: by default only the newest week's
            plan = publication_plan(con, out, to_publish, to_publish if all_reports else to_publish[-1:])
            summary = summary_text(con)
        publish(plan, to_publish, jobs, echo)

    echo(summary)
    echo(f"Warning lists: {out / 'warnings'}")
    echo(f"Reports:       {out / 'reports'}")
    echo(f"Warehouse:     {warehouse}")
    echo(f"Done in {time.monotonic() - started:.0f} s.")
    return to_publish


def publish(plan: list[Partition], weeks: list[str], jobs: int, echo: Callable[[str], None]) -> None:
    """The plan's partitions, in worker processes when there are at least PARALLEL_FROM of them."""
    workers = min(jobs, len(plan)) if len(plan) >= PARALLEL_FROM else 1
    echo(f"[2/2] publication of {len(weeks)} weeks"
         + (f" ({weeks[0]} … {weeks[-1]})" if weeks else "")
         + f": {len(plan)} partitions to publish, "
         + (f"{workers} at a time" if workers > 1 else "in this process"))
    failed, done = [], 0
    for batch, outcome, seconds in run_batches(plan, workers):
        done += len(outcome)
        failures = [p.label for p, ok in outcome.items() if not ok]
        echo(f"  publishing {batch.label} ({done}/{len(plan)}) "
             + (f"FAILED: {', '.join(failures)}" if failures else "done") + f" in {seconds:.1f} s")
        failed += failures
    if failed:
        raise RuntimeError(f"publication failed for {', '.join(failed)}; see the log above")
