"""Ingest assets: thin wrappers over `pipelines.ingest`, one per feed, chained in dependency order.

The chain (institutions -> orders -> ...) both respects references and keeps one DuckDB writer at a time.
"""


import os

import dagster as dg

from pipelines.ingest import FEED_ORDER, compute_continuity_breaks, ingest_feed
from pipelines.resources import FoldersResource, WarehouseResource
from tutorwatch import settings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


def _feed_asset(feed: str, upstream: str | None) -> dg.AssetsDefinition:
    @dg.asset(name=feed, group_name="ingest", kinds={"duckdb"}, deps=[upstream] if upstream else [],
              description=f"staging.{feed} and staging.{feed}_history from the landing folder {feed}/")
    def _asset(context: dg.AssetExecutionContext, duckdb: WarehouseResource,
               folders: FoldersResource) -> dg.MaterializeResult:
        with duckdb.get_connection() as con:
            result = ingest_feed(con, folders.landing, feed, settings.pii_key(), progress=context.log.info)
            rows = con.execute(f"SELECT count(*) FROM staging.{feed}").fetchall()[0][0]
        return dg.MaterializeResult(metadata={**result.metadata(), "rows_quarantined": result.rows_quarantined,
                                              "dagster/row_count": rows})

    return _asset


feed_assets = [_feed_asset(feed, FEED_ORDER[i - 1] if i else None) for i, feed in enumerate(FEED_ORDER)]


@dg.asset(group_name="ingest", kinds={"duckdb"}, deps=[FEED_ORDER[-1]])
def bank_continuity_breaks(duckdb: WarehouseResource) -> dg.MaterializeResult:
    """Supervision-account balances that do not follow from the previous balance and the movement."""
    with duckdb.get_connection() as con:
        breaks = compute_continuity_breaks(con)
        accounts = con.execute(
            "SELECT count(DISTINCT (bank_code, account_id)) FROM staging.bank_continuity_breaks").fetchall()[0][0]
    return dg.MaterializeResult(metadata={"dagster/row_count": breaks, "accounts_with_breaks": accounts})
