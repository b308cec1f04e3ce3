"""The warnings mart as an asset: a thin wrapper around `indicators.rules.refresh_warnings`."""

import os

import dagster as dg

from indicators.rules import refresh_warnings
from pipelines.resources import WarehouseResource
from pipelines.warehouse import beside_frames

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dg.asset(
    group_name="publication",
    kinds={"duckdb"},
    deps=[dg.AssetKey("institution_week_indicators"), dg.AssetKey("institution_week_scores")],
    description="marts.warnings (listed institution-weeks with tier, score, reasons, change) and warning_drops; "
                "ops.week_builds (when each week was last rebuilt).",
)
def warnings(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> dg.MaterializeResult:
    """Rebuild only weeks whose indicators or scores changed since their last build, and the week after each
    (its `change` column compares against them), so publication republishes exactly those weeks."""
    with duckdb.get_connection() as con:
        with beside_frames(con):  # the rule flags come to Python a block of weeks at a time
            rows, weeks = refresh_warnings(con, progress=context.log.info)
        by_tier = dict(con.execute("select tier, count(*) from marts.warnings group by tier").fetchall())
        drops = con.execute("select count(*) from marts.warning_drops").fetchone()[0]
    return dg.MaterializeResult(metadata={
        "rows": rows, "drops": drops, "weeks_rebuilt": len(weeks),
        "first_week_rebuilt": weeks[0] if weeks else "", **{f"rows_{t}": n for t, n in by_tier.items()},
    })
