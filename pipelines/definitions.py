"""The code location: every asset, check, job and schedule under pipelines/defs, with the resources."""

import warnings

import dagster as dg

from pipelines import defs as defs_package
from pipelines.defs.warehouse import WAREHOUSE_JOB
from pipelines.resources import default_resources

with warnings.catch_warnings():
    # Package-module loading is marked "preview"; the warning would open every `tutorwatch run`.
    warnings.simplefilter("ignore", dg.PreviewWarning)
    defs = dg.Definitions.merge(
        dg.load_definitions_from_package_module(defs_package),
        dg.Definitions(resources=default_resources()),
    )


def warehouse_job() -> dg.JobDefinition:
    """The warehouse job for `dg.reconstructable`: `dg.execute_job` and its re-execution from failure need a
    job they can load by name."""
    return defs.resolve_job_def(WAREHOUSE_JOB)
