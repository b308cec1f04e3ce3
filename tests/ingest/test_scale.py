"""National scale (~1M rows per delivery): routing and merging stay set-based. Run by `make bench`."""

from __future__ import annotations

import os
import time

import pytest

from ingest_helpers import GOOD, PII_KEY, row, write_feed
from pipelines.ingest import ingest_feed

ROWS = int(os.environ.get("TUTORWATCH_BENCH_ROWS", "1000000"))


@pytest.mark.slow
def test_a_million_orders_load_and_a_corrected_redelivery_merges(con, landing):
    write_feed(landing, "institutions", [GOOD["institutions"]])
    bad_every = 1000  # one order in a thousand pays more than its list price
    write_feed(landing, "orders", [row("orders", order_id=f"O{i}", parent_phone=f"138{i:08d}",
                                       paid_fen="300001" if i % bad_every == 0 else "240000") for i in range(ROWS)])
    ingest_feed(con, landing, "institutions", PII_KEY)
    started = time.monotonic()
    first = ingest_feed(con, landing, "orders", PII_KEY)
    first_seconds = time.monotonic() - started
    assert first.rows_inserted == ROWS - ROWS // bad_every
    assert first.quarantined_per_rule == {"orders.paid_le_list_price": ROWS // bad_every}
    write_feed(landing, "orders", [row("orders", order_id=f"O{i}", parent_phone=f"138{i:08d}",
                                       status="cancelled" if i % 10 == 1 else "paid") for i in range(1, ROWS, 2)],
               date="20260317")
    second = ingest_feed(con, landing, "orders", PII_KEY)
    assert (second.rows_corrected, second.rows_unchanged) == (ROWS // 10, ROWS // 2 - ROWS // 10)
    print(f"\n{ROWS:,} orders: first delivery {first_seconds:.0f} s")
    assert first_seconds < 240
