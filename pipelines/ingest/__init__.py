"""Ingestion of a landing directory that follows the interchange standard (library, no Dagster)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.ingest.continuity import compute_continuity_breaks
from pipelines.ingest.loading import FeedResult, Progress, ingest_feed
from pipelines.ingest.summary import summary_text

# Dependency order: references are checked against feeds loaded before.
FEED_ORDER = ("institutions", "orders", "consumptions", "refunds", "evaluations", "complaints", "account_movements")


@dataclass
class IngestSummary:
    feeds: dict[str, FeedResult] = field(default_factory=dict)
    continuity_breaks: int = 0


def ingest_landing(con: duckdb.DuckDBPyConnection, landing: Path, pii_key: bytes,
                   progress: Progress = None) -> IngestSummary:
    """Every feed in dependency order, then the bank continuity breaks."""
    summary = IngestSummary()
    for feed in FEED_ORDER:
        summary.feeds[feed] = ingest_feed(con, Path(landing), feed, pii_key, progress)
    summary.continuity_breaks = compute_continuity_breaks(con)
    return summary


__all__ = ["FEED_ORDER", "FeedResult", "IngestSummary", "compute_continuity_breaks", "ingest_feed",
           "ingest_landing", "summary_text"]
