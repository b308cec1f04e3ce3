"""Scale of ingestion: the contract check validates a batch a group of whole files at a time, a large file in
parts by its key (the outcome cannot depend on it) beside a smaller DuckDB share, and files processed before
are not read again."""

from __future__ import annotations

import os

import pytest

from ingest_helpers import GOOD, PII_KEY, row, write_feed
from pipelines.ingest import ingest_feed
from pipelines.ingest.contract_check import check_contract, file_chunks
from pipelines.warehouse import FRAMES_SHARE
from tutorwatch import settings


def test_files_are_grouped_up_to_the_row_budget_and_a_large_file_stands_alone():
    files = [("a", 3), ("b", 2), ("c", 9), ("d", 1), ("e", 1)]
    assert list(file_chunks(files, 5)) == [["a", "b"], ["c"], ["d", "e"]]
    assert list(file_chunks([], 5)) == []


def checked_orders(con, landing, deliveries: dict[str, list[dict]], chunk_rows: int):
    """The contract check of orders files (delivery date -> rows) ingested beside one good institution."""
    write_feed(landing, "institutions", [GOOD["institutions"]])
    for day, rows in deliveries.items():
        write_feed(landing, "orders", rows, date=day)
    ingest_feed(con, landing, "institutions", PII_KEY)
    ingest_feed(con, landing, "orders", PII_KEY)
    return check_contract(con, "orders", chunk_rows=chunk_rows)


@pytest.mark.parametrize("chunk_rows", [1, 1_000])
def test_outcome_is_the_same_one_file_at_a_time_or_all_at_once(con, landing, chunk_rows):
    # O1 is delivered in both files (once per file: not a twin); each file has one order paying over list
    outcome = checked_orders(con, landing, {
        "20260310": [row("orders", order_id="O1"), row("orders", order_id="O2", paid_fen="999999999"),
                     row("orders", order_id="O3")],
        "20260317": [row("orders", order_id="O1"), row("orders", order_id="O4", paid_fen="999999999")],
    }, chunk_rows)
    assert (outcome.rows_checked, outcome.unexpected_per_rule) == (5, {"orders.paid_le_list_price": 2})
    assert outcome.passed
    con.execute("DELETE FROM quarantine.rows WHERE file_name = 'orders_20260317.csv'")
    escaped = check_contract(con, "orders", chunk_rows=chunk_rows)
    assert (escaped.escaped_quarantine, escaped.reached_staging) == (1, 0)


@pytest.mark.parametrize("chunk_rows", [1, 2, 1_000])
def test_a_key_twice_in_a_file_cut_in_parts_is_still_flagged(con, landing, chunk_rows):
    """A file over the chunk's rows goes to GX in parts by a hash of its key: both rows of a twin key meet in
    one part, so the uniqueness rule still sees them."""
    twin = row("orders", order_id="O1")
    outcome = checked_orders(con, landing, {
        "20260310": [twin, row("orders", order_id="O2"), twin, row("orders", order_id="O3")]}, chunk_rows)
    assert (outcome.rows_checked, outcome.unexpected_per_rule) == (4, {"orders.key_unique_in_file": 2})
    assert outcome.passed


def test_a_file_processed_before_is_not_read_again_unless_it_changed_on_disk(con, landing):
    write_feed(landing, "institutions", [GOOD["institutions"]])
    path = write_feed(landing, "orders", [row("orders", order_id="O1")])
    ingest_feed(con, landing, "institutions", PII_KEY)
    assert ingest_feed(con, landing, "orders", PII_KEY).files_loaded == 1
    stat = path.stat()
    path.write_bytes(b"\xff" * stat.st_size)  # unreadable if it were read, same size and time
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = ingest_feed(con, landing, "orders", PII_KEY)
    assert (again.files_loaded, again.files_rejected) == (0, 0)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert ingest_feed(con, landing, "orders", PII_KEY).files_rejected == 1


def test_gx_holds_its_chunks_while_duckdb_holds_a_smaller_share(con, landing, monkeypatch, duckdb_limit):
    """DuckDB's cache of the batch's blocks, read once, filled its whole share beside GX's frames: a national
    bank-movements check peaked at 3,417 MiB, 1,894 with a quarter of the budget, as fast. The share comes back."""
    from pipelines.ingest import contract_check

    monkeypatch.setenv(settings.ENV_MEMORY_LIMIT, "4GB")
    seen, validate = [], contract_check.validate_batches

    def recorded(feed_name, frames):
        seen.append(duckdb_limit(con))
        yield from validate(feed_name, frames)

    monkeypatch.setattr(contract_check, "validate_batches", recorded)
    assert checked_orders(con, landing, {"20260310": [row("orders", order_id="O1")]}, chunk_rows=1_000).passed
    assert seen == [pytest.approx(4 * 10**9 * FRAMES_SHARE, rel=0.05)]
    assert duckdb_limit(con) == pytest.approx(4 * 10**9 * settings.DUCKDB_MEMORY_SHARE, rel=0.05)
