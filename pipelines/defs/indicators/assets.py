"""The weekly indicator mart as an asset: a thin wrapper around `indicators.compute`."""

import os

import dagster as dg

from indicators.compute import MART, compute_institution_week_indicators
from pipelines.resources import WarehouseResource

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

# Keys, not asset objects, so this loads before (or without) the ingest assets in the code location.
FEED_ASSETS = (
    "institutions", "orders", "consumptions", "refunds", "account_movements", "complaints", "evaluations",
    "bank_continuity_breaks",
)


@dg.asset(
    group_name="indicators",
    kinds={"duckdb"},
    deps=[dg.AssetKey(name) for name in FEED_ASSETS],
    description="One row per active institution and ISO week, one DOUBLE column per registry indicator.",
)
def institution_week_indicators(duckdb: WarehouseResource) -> dg.MaterializeResult:
    """Recompute every week: late rows change past weeks, and the set-based SQL costs the same either way."""
    with duckdb.get_connection() as con:
        rows = compute_institution_week_indicators(con)
        weeks, institutions = con.execute(
            f"SELECT count(DISTINCT week), count(DISTINCT institution_id) FROM {MART}"
        ).fetchone()
    return dg.MaterializeResult(
        metadata={"rows": rows, "weeks": weeks, "institutions": institutions, "table": MART}
    )
