"""The warnings mart as an asset: a thin wrapper around `indicators.rules.build_warnings`."""

import os

import dagster as dg

from indicators.rules import build_warnings
from pipelines.resources import WarehouseResource

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


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
