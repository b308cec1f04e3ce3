"""Contract checks: one per feed, great-expectations on the last delivered batch against the routing."""


import dagster as dg

from pipelines.ingest import FEED_ORDER
from pipelines.resources import WarehouseResource


def _contract_check(feed: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=feed, name=f"{feed}_contract", blocking=False,
                    description=f"every row of {feed} breaking a contract rule is in quarantine, none in staging")
    def _check(duckdb: WarehouseResource) -> dg.AssetCheckResult:
        # imported here: great-expectations takes ~7 s to import, which every process loading the
        # definitions (publication workers, the dashboard) would otherwise pay
        from pipelines.ingest.contract_check import check_contract

        with duckdb.get_connection() as con:
            outcome = check_contract(con, feed)
        # ERROR when a breaking row escaped; WARN when rows were (correctly) quarantined.
        severity = dg.AssetCheckSeverity.WARN if outcome.passed else dg.AssetCheckSeverity.ERROR
        return dg.AssetCheckResult(
            passed=outcome.passed,
            severity=severity,
            metadata={"rows_checked": outcome.rows_checked, "rows_flagged": outcome.rows_flagged,
                      "unexpected_per_expectation": outcome.unexpected_per_rule,
                      "escaped_quarantine": outcome.escaped_quarantine, "reached_staging": outcome.reached_staging},
        )

    return _check


contract_checks = [_contract_check(feed) for feed in FEED_ORDER]
