"""Dagster definitions of the ingest area: one asset per feed, the continuity breaks, contract checks."""
