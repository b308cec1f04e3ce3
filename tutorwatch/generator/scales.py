"""The three sizes of synthetic country the generator can write, and their defaults."""

from __future__ import annotations

from dataclasses import dataclass

from data_contracts.feeds import FEED_NAMES
from data_contracts.regions import PROVINCE_CODES



@dataclass(frozen=True)
class Scale:
    name: str
    institutions: int
    weeks: int
    provinces: tuple[str, ...]
    orders_per_week: float        # mean new orders per institution-week at the seasonal baseline
    abnormal_per_year: float      # abnormal closures per institution-year
    parquet_feeds: frozenset[str]  # platform feeds delivered as Parquet
    parquet_banks: frozenset[str]  # banks that deliver Parquet (the others CSV)
    start: str = "2025-03-03"     # Monday of the first delivered week
    chunk: int = 4000             # institutions simulated together (bounds memory at national scale)


SCALES: dict[str, Scale] = {
    s.name: s
    for s in (
        # 40 weeks from mid-April cover the summer peak, Golden Week and the New Year.
        Scale("demo", 2_000, 40, PROVINCE_CODES, 1.0, 0.01, frozenset({"consumptions"}), frozenset({"308"}),
              start="2025-04-14"),
        # 1%/yr over 78 weeks gives ~180 abnormal closures in 12,000 institutions: enough to evaluate.
        Scale("province", 12_000, 78, ("44",), 0.6, 0.01, frozenset({"consumptions"}), frozenset({"308"})),
        Scale(
            "national", 150_000, 52, PROVINCE_CODES, 0.7, 0.01,
            frozenset(FEED_NAMES) - {"institutions", "complaints", "account_movements"},
            frozenset({"102", "103", "104", "105", "301", "302", "308", "403"}),
        ),
    )
}
