"""Deliveries: re-delivery, manifests, encodings, unreadable files, corrections, late rows, referential retry."""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_contracts.feeds import FEEDS
from ingest_helpers import GOOD, PII_KEY, csv_bytes, row, write_base, write_feed
from pipelines.ingest import ingest_feed, ingest_landing, summary_text

TABLES = [f"staging.{f}" for f in FEEDS] + [f"staging.{f}_history" for f in FEEDS] + ["quarantine.rows", "ops.files"]


def counts(con) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}


def one(con, sql, params=()):
    return con.execute(sql, list(params)).fetchall()


def test_loading_the_same_landing_twice_changes_nothing(con, landing):
    write_base(landing)
    for feed in ("consumptions", "refunds", "evaluations", "complaints", "account_movements"):
        write_feed(landing, feed, [GOOD[feed]])
    write_feed(landing, "orders", [row("orders", order_id="O2", paid_fen="12.5")], date="20260311")
    ingest_landing(con, landing, PII_KEY)
    first = counts(con)
    assert first["staging.orders"] == 1 and first["quarantine.rows"] == 1 and first["ops.files"] == 8
    ingest_landing(con, landing, PII_KEY)
    assert counts(con) == first


def test_same_content_under_another_name_is_a_duplicate(con, landing):
    write_base(landing)
    write_feed(landing, "orders", [GOOD["orders"]], date="20260311")
    result = ingest_feed(con, landing, "institutions", PII_KEY)
    result = ingest_feed(con, landing, "orders", PII_KEY)
    assert (result.files_loaded, result.files_duplicate) == (1, 1)
    assert one(con, "SELECT file_name, status FROM ops.files WHERE feed = 'orders' ORDER BY 1") == [
        ("orders_20260310.csv", "loaded"), ("orders_20260311.csv", "duplicate")]


def _manifest(data: bytes, rows: int, amount: int | None) -> dict:
    return {"rows": rows, "amount_fen_total": amount, "sha256": hashlib.sha256(data).hexdigest()}


def test_manifest_mismatch_rejects_the_whole_file(con, landing):
    write_feed(landing, "institutions", [GOOD["institutions"]])
    rows = [GOOD["orders"], row("orders", order_id="O2", paid_fen="100000")]
    data = csv_bytes("orders", rows)
    # 240000 + 100000 = 340000; the manifest claims one fen more
    write_feed(landing, "orders", rows, manifest=_manifest(data, 2, 340001))
    ingest_feed(con, landing, "institutions", PII_KEY)
    result = ingest_feed(con, landing, "orders", PII_KEY)
    assert result.files_rejected == 1 and "amount_fen_total" in result.rejections["orders_20260310.csv"]
    assert one(con, "SELECT count(*) FROM staging.orders") == [(0,)]
    assert one(con, "SELECT status FROM ops.files WHERE feed = 'orders'") == [("rejected",)]


def test_matching_manifest_loads(con, landing):
    write_feed(landing, "institutions", [GOOD["institutions"]])
    rows = [GOOD["orders"], row("orders", order_id="O2", paid_fen="100000")]
    write_feed(landing, "orders", rows, manifest=_manifest(csv_bytes("orders", rows), 2, 340000))
    ingest_feed(con, landing, "institutions", PII_KEY)
    ingest_feed(con, landing, "orders", PII_KEY)
    assert one(con, "SELECT rows_delivered, rows_inserted, amount_fen_delivered, amount_fen_loaded FROM ops.files "
                    "WHERE feed = 'orders'") == [(2, 2, 340000, 340000)]


@pytest.mark.parametrize("values, total", [
    (["240000", "-5", None, "12.5", "", "1e3", " 7", "007"], 240000 - 5 + 7),
    # a total beyond int64 is summed exactly too (its digits could overflow the vectorised sum)
    (["99999999999999999999", "1", "9223372036854775807"], 99999999999999999999 + 1 + 9223372036854775807),
    ([None, "abc"], 0),
])
def test_the_amount_total_counts_only_integer_text_exactly(values, total):
    from pipelines.ingest.reading import _integer_total

    assert _integer_total(pa.chunked_array([pa.array(values, pa.string())])) == total


def test_gb18030_bank_file_loads_with_correct_chinese(con, landing):
    write_feed(landing, "account_movements", [row("account_movements", bank_code="工商银行", account_id="监管户001")],
               encoding="gb18030")
    assert "工商银行".encode("gb18030") in (landing / "account_movements" / "account_movements_20260310.csv").read_bytes()
    ingest_feed(con, landing, "account_movements", PII_KEY)
    assert one(con, "SELECT bank_code, account_id FROM staging.account_movements") == [("工商银行", "监管户001")]


def test_utf8_with_bom_loads(con, landing):
    path = write_feed(landing, "institutions", [GOOD["institutions"]])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    ingest_feed(con, landing, "institutions", PII_KEY)
    assert one(con, "SELECT name FROM staging.institutions") == [("北京启明教育",)]


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"order_id,institution_id\nO1,X\n", "missing"),
    (csv_bytes("orders", [GOOD["orders"]]).replace(b"status\n", b"status,extra\n", 1), "unexpected extra"),
    (csv_bytes("orders", [GOOD["orders"]]).replace(b"\nO1,", b'\n"O1,', 1), "unreadable CSV"),
    (b"\xff\xfe\x00o\x00r", "encoding"),
])
def test_unreadable_files_are_rejected_with_a_reason(con, landing, content, reason):
    (landing / "orders").mkdir()
    (landing / "orders" / "orders_20260310.csv").write_bytes(content)
    result = ingest_feed(con, landing, "orders", PII_KEY)
    assert result.files_rejected == 1
    assert reason in result.rejections["orders_20260310.csv"]
    assert reason in summary_text(con)


def test_header_only_file_loads_zero_rows(con, landing):
    write_feed(landing, "orders", [])
    result = ingest_feed(con, landing, "orders", PII_KEY)
    assert result.files_loaded == 1
    assert one(con, "SELECT status, rows_delivered FROM ops.files") == [("loaded", 0)]


def _parquet_orders(path, paid_type, paid_values):
    shanghai = ZoneInfo("Asia/Shanghai")
    n = len(paid_values)
    table = {c: pa.array([GOOD["orders"][c]] * n) for c in FEEDS["orders"].column_names}
    table["order_id"] = pa.array([f"P{i}" for i in range(n)])
    table["list_price_fen"] = pa.array([300000] * n, pa.int64())
    table["paid_fen"] = pa.array(paid_values, paid_type)
    table["class_hours"] = pa.array([40] * n, pa.int32())
    table["course_start"] = pa.array([dt.date(2026, 3, 3)] * n)
    table["course_end"] = pa.array([dt.date(2026, 5, 31)] * n)
    table["paid_at"] = pa.array([dt.datetime(2026, 3, 2, 19, 30, tzinfo=shanghai)] * n, pa.timestamp("us", "UTC"))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(table), path)


def test_parquet_is_read_with_its_types_and_a_float_amount_is_quarantined(con, landing):
    write_feed(landing, "institutions", [GOOD["institutions"]])
    _parquet_orders(landing / "orders" / "orders_20260310.parquet", pa.int64(), [240000, 250000])
    _parquet_orders(landing / "orders" / "orders_20260311.parquet", pa.float64(), [1200.0])
    ingest_feed(con, landing, "institutions", PII_KEY)
    ingest_feed(con, landing, "orders", PII_KEY)
    assert one(con, "SELECT order_id, paid_fen, paid_at FROM staging.orders ORDER BY 1") == [
        ("P0", 240000, dt.datetime(2026, 3, 2, 19, 30, tzinfo=ZoneInfo("Asia/Shanghai"))),
        ("P1", 250000, dt.datetime(2026, 3, 2, 19, 30, tzinfo=ZoneInfo("Asia/Shanghai")))]
    assert one(con, "SELECT file_name, rule, detail FROM quarantine.rows") == [
        ("orders_20260311.parquet", "orders.paid_fen.format", "paid_fen=1200.0")]


def test_truncated_parquet_is_rejected(con, landing):
    path = landing / "orders" / "orders_20260310.parquet"
    _parquet_orders(path, pa.int64(), [240000])
    path.write_bytes(path.read_bytes()[:-20])
    result = ingest_feed(con, landing, "orders", PII_KEY)
    assert "unreadable Parquet" in result.rejections["orders_20260310.parquet"]


def _refund_versions(con):
    return one(con, "SELECT status, _file, _superseded_at IS NULL FROM staging.refunds_history ORDER BY _file")


def test_corrected_refund_supersedes_the_old_version_with_history_kept(con, landing):
    write_base(landing)
    write_feed(landing, "refunds", [GOOD["refunds"]])
    ingest_landing(con, landing, PII_KEY)
    write_feed(landing, "refunds", [row("refunds", status="approved", decided_at="2026-03-12T10:00:00+08:00")],
               date="20260317")
    result = ingest_feed(con, landing, "refunds", PII_KEY)
    assert (result.rows_inserted, result.rows_corrected) == (0, 1)
    assert one(con, "SELECT status, decided_at IS NOT NULL FROM staging.refunds") == [("approved", True)]
    assert _refund_versions(con) == [("requested", "refunds_20260310.csv", False),
                                     ("approved", "refunds_20260317.csv", True)]


def test_an_earlier_delivery_arriving_last_does_not_overwrite_the_later_one(con, landing):
    write_base(landing)
    write_feed(landing, "refunds", [row("refunds", status="approved", decided_at="2026-03-12T10:00:00+08:00")],
               date="20260310", seq=2)
    ingest_landing(con, landing, PII_KEY)
    write_feed(landing, "refunds", [GOOD["refunds"]], date="20260310", seq=1)
    ingest_feed(con, landing, "refunds", PII_KEY)
    assert one(con, "SELECT status FROM staging.refunds") == [("approved",)]
    assert _refund_versions(con) == [("requested", "refunds_20260310_1.csv", False),
                                     ("approved", "refunds_20260310_2.csv", True)]


def test_new_keys_with_versions_in_one_batch_keep_the_latest_as_current(con, landing):
    """A key first seen with one version skips the winner search; one first seen with two does not."""
    write_base(landing)
    write_feed(landing, "refunds", [GOOD["refunds"], row("refunds", refund_id="R2")])
    write_feed(landing, "refunds", [row("refunds", status="approved", decided_at="2026-03-12T10:00:00+08:00")],
               date="20260317")
    result = ingest_landing(con, landing, PII_KEY).feeds["refunds"]
    assert (result.rows_inserted, result.rows_corrected) == (2, 1)
    assert one(con, "SELECT refund_id, status, _file FROM staging.refunds ORDER BY 1") == [
        ("R1", "approved", "refunds_20260317.csv"), ("R2", "requested", "refunds_20260310.csv")]
    assert one(con, "SELECT refund_id, status, _superseded_at IS NULL FROM staging.refunds_history ORDER BY 1, 2") == [
        ("R1", "approved", True), ("R1", "requested", False), ("R2", "requested", True)]


def test_identical_row_redelivered_is_a_no_op(con, landing):
    write_base(landing)
    ingest_landing(con, landing, PII_KEY)
    write_feed(landing, "orders", [GOOD["orders"], row("orders", order_id="O2")], date="20260317")
    result = ingest_feed(con, landing, "orders", PII_KEY)
    assert (result.rows_inserted, result.rows_corrected, result.rows_unchanged) == (1, 0, 1)
    assert one(con, "SELECT order_id, _file FROM staging.orders ORDER BY 1") == [
        ("O1", "orders_20260310.csv"), ("O2", "orders_20260317.csv")]


def test_late_row_is_accepted(con, landing):
    write_base(landing)
    write_feed(landing, "consumptions", [GOOD["consumptions"]])
    ingest_landing(con, landing, PII_KEY)
    # a consumption of week 2026-W10 delivered three weeks later
    write_feed(landing, "consumptions", [row("consumptions", consumption_id="K0", consumed_at="2026-03-03T10:00:00+08:00")],
               date="20260331")
    ingest_feed(con, landing, "consumptions", PII_KEY)
    assert one(con, "SELECT consumption_id, _delivery_date FROM staging.consumptions ORDER BY 1") == [
        ("K0", dt.date(2026, 3, 31)), ("K1", dt.date(2026, 3, 10))]


def test_hours_count_across_deliveries(con, landing):
    write_base(landing)  # O1 has 40 class hours
    write_feed(landing, "consumptions", [row("consumptions", class_hours="30")])
    ingest_landing(con, landing, PII_KEY)
    write_feed(landing, "consumptions", [row("consumptions", consumption_id="K2", class_hours="11",
                                             consumed_at="2026-03-12T10:00:00+08:00")], date="20260317")
    ingest_feed(con, landing, "consumptions", PII_KEY)
    assert one(con, "SELECT rule FROM quarantine.rows") == [("consumptions.hours_within_order",)]


def test_referential_failure_is_released_when_the_order_arrives(con, landing):
    write_base(landing)
    write_feed(landing, "consumptions", [row("consumptions", consumption_id="K2", order_id="O2")])
    ingest_landing(con, landing, PII_KEY)
    assert one(con, "SELECT rule, released_at IS NULL FROM quarantine.rows") == [("consumptions.order_known", True)]
    write_feed(landing, "orders", [row("orders", order_id="O2")], date="20260317")
    summary = ingest_landing(con, landing, PII_KEY)
    assert summary.feeds["consumptions"].rows_released == 1
    assert one(con, "SELECT rule, released_at IS NULL FROM quarantine.rows") == [("consumptions.order_known", False)]
    assert one(con, "SELECT consumption_id, _file, _row FROM staging.consumptions") == [
        ("K2", "consumptions_20260310.csv", 1)]


def test_summary_lists_rows_rules_and_rejections(con, landing):
    write_base(landing)
    write_feed(landing, "orders", [row("orders", order_id="O2", paid_fen="400000")], date="20260311")
    (landing / "refunds").mkdir()
    (landing / "refunds" / "refunds_20260310.csv").write_bytes(b"")
    ingest_landing(con, landing, PII_KEY)
    text = summary_text(con)
    assert "orders.paid_le_list_price" in text and "refunds_20260310.csv: empty file" in text
    assert [line.split() for line in text.splitlines() if line.strip().startswith("orders ")] == [["orders", "1"]]


def test_a_consumption_delivered_twice_counts_once_against_the_order(con, landing):
    write_base(landing)  # O1 has 40 class hours: 30 + 10 fit, whichever file repeats the 30
    write_feed(landing, "consumptions", [row("consumptions", class_hours="30")])
    write_feed(landing, "consumptions", [row("consumptions", class_hours="30"),
                                         row("consumptions", consumption_id="K2", class_hours="10",
                                             consumed_at="2026-03-06T10:00:00+08:00")], date="20260311")
    ingest_landing(con, landing, PII_KEY)
    assert one(con, "SELECT count(*) FROM quarantine.rows") == [(0,)]
    assert one(con, "SELECT sum(class_hours) FROM staging.consumptions") == [(40,)]


def test_the_batch_holds_no_earlier_files_arrow_buffers(con, landing, monkeypatch):
    """Each file's rows are handed to DuckDB and released before the next file is read: appended inside the
    merge's transaction, DuckDB kept every file's Arrow buffers until the commit (8 GB at national scale)."""
    from pipelines.ingest import loading

    write_feed(landing, "institutions", [GOOD["institutions"]])
    for day in range(10, 18):
        write_feed(landing, "orders", [row("orders", order_id=f"O{day}-{i}", parent_phone=f"138{i:08d}")
                                       for i in range(20_000)], date=f"202603{day}")
    ingest_feed(con, landing, "institutions", PII_KEY)
    held = []  # Arrow bytes alive when a file is appended: that file's and whatever DuckDB kept of earlier ones
    append = loading._append_to_batch
    monkeypatch.setattr(loading, "_append_to_batch",
                        lambda *args: (held.append(pa.total_allocated_bytes()), append(*args)))
    result = ingest_feed(con, landing, "orders", PII_KEY)
    assert result.files_loaded == 8 and result.rows_inserted == 8 * 20_000
    assert len(held) == 8 and held[-1] < 2 * held[0]
