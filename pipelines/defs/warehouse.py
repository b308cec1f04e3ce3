"""The warehouse job: every unpartitioned asset (ingest, contracts, indicators, model, warnings) with its checks.

In one process (DuckDB has one writer). `tutorwatch run` executes it on an instance kept in OUT, so a run that
was killed or failed can be re-executed from its first unfinished step (`tutorwatch run --resume`)."""

import dagster as dg

WAREHOUSE_JOB = "warehouse"

warehouse_job = dg.define_asset_job(
    WAREHOUSE_JOB,
    selection=dg.AssetSelection.groups("ingest", "indicators", "model") | dg.AssetSelection.assets("warnings"),
    executor_def=dg.in_process_executor,
)
