"""The weekly indicator mart as an asset: a thin wrapper around `indicators.compute`."""

import os

import dagster as dg

from indicators.compute import MART, refresh_institution_week_indicators
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
    """Recompute only the institution-weeks that rows loaded since the last computation touch (all on the first
    run), so a weekly run over years of history costs about one week's work."""
    with duckdb.get_connection() as con:
        refresh = refresh_institution_week_indicators(con)
        weeks, institutions = con.execute(
            f"SELECT count(DISTINCT week), count(DISTINCT institution_id) FROM {MART}"
        ).fetchone()
    recomputed = refresh.weeks
    return dg.MaterializeResult(
        metadata={
            "rows": refresh.rows, "weeks": weeks, "institutions": institutions, "table": MART,
            "mode": "full" if refresh.full else "incremental",
            "weeks_recomputed": len(recomputed),
            "institutions_recomputed": refresh.institutions,
            "first_week_recomputed": recomputed[0] if recomputed else "",
        }
    )
