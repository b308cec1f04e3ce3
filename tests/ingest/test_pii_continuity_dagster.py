"""Personal data never stored; continuity breaks found where planted; the ingest assets under Dagster."""

from __future__ import annotations

import dagster as dg
import pytest

from data_contracts import pii
from data_contracts.identifiers import resident_id_check_char
from ingest_helpers import COMPLAINT_PHONE, GOOD, PHONE, PII_KEY, row, write_base, write_feed
from pipelines.defs.ingest.assets import bank_continuity_breaks, feed_assets
from pipelines.defs.ingest.checks import contract_checks
from pipelines.ingest import FEED_ORDER, compute_continuity_breaks, ingest_feed, ingest_landing
from pipelines.resources import FoldersResource, WarehouseResource
from pipelines.warehouse import connect
from tutorwatch import settings

ID_NUMBER = "11010519491231002" + resident_id_check_char("11010519491231002")
TEXT_PHONE = "13700001111"


def test_mask_text_hides_phones_and_valid_id_numbers():
    wrong_check = ID_NUMBER[:17] + ("0" if ID_NUMBER[17] != "0" else "1")  # not an ID number: left alone
    text = f"请联系 137-0000-1111 或 138 1234 5678，身份证{ID_NUMBER}，订单号{wrong_check}"
    assert pii.mask_text(text) == f"请联系 1********** 或 1**********，身份证[身份证号已隐去]，订单号{wrong_check}"


def test_pseudonym_is_the_keyed_hmac():
    import hashlib
    import hmac

    assert pii.pseudonymise(PHONE, PII_KEY) == hmac.new(PII_KEY, PHONE.encode(), hashlib.sha256).hexdigest()
    assert pii.pseudonymise(PHONE, PII_KEY) != pii.pseudonymise(PHONE, PII_KEY + b"x")


def test_no_raw_phone_anywhere_in_the_warehouse_file(tmp_path, landing):
    write_base(landing)
    write_feed(landing, "orders", [row("orders", order_id="O2", paid_fen="400000")], date="20260311")  # quarantined
    write_feed(landing, "complaints", [row("complaints", text=f"请回电{TEXT_PHONE}，身份证{ID_NUMBER}")])
    path = tmp_path / "pii.duckdb"
    con = connect(path)
    con.execute("SET force_compression = 'uncompressed'")  # so that stored strings are visible in the bytes
    ingest_landing(con, landing, PII_KEY, progress=lambda m: None)
    pseudonym = pii.pseudonymise(PHONE, PII_KEY)
    assert con.execute("SELECT count(*) FROM quarantine.rows WHERE row_json LIKE ?", [f"%{pseudonym}%"]).fetchall() \
        == [(1,)]
    con.execute("CHECKPOINT")
    con.close()
    data = path.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("pii.duckdb.wal"))
    assert pseudonym.encode() in data  # the grep does see stored strings
    for secret in (PHONE, COMPLAINT_PHONE, TEXT_PHONE, ID_NUMBER):
        assert secret.encode() not in data, secret


def test_missing_key_refuses(monkeypatch, con, landing):
    monkeypatch.delenv(settings.ENV_PII_KEY, raising=False)
    with pytest.raises(settings.PiiKeyMissing):
        settings.pii_key()
    write_base(landing)
    with pytest.raises(ValueError):
        ingest_feed(con, landing, "orders", b"")
    assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'staging'"
                       ).fetchall() == [(0,)]


def _movement(mid, booked_at, kind, amount, balance, account="0200001234", order_id=""):
    return row("account_movements", movement_id=mid, booked_at=booked_at, kind=kind, amount_fen=str(amount),
               balance_after_fen=str(balance), account_id=account, order_id=order_id)


def test_continuity_breaks_found_where_planted(con, landing):
    write_feed(landing, "account_movements", [
        _movement("M1", "2026-03-02T19:31:00+08:00", "deposit", 240000, 240000, order_id="O1"),  # opening
        _movement("M2", "2026-03-04T10:00:00+08:00", "release", 50000, 190000),
        _movement("M3", "2026-03-05T10:00:00+08:00", "interest", 100, 190100),
        # Monday 01:00 in Shanghai (still Sunday in UTC): a movement of 30000 is missing before it
        _movement("M4", "2026-03-09T01:00:00+08:00", "refund", 10000, 150100, order_id="O1"),
        _movement("M5", "2026-03-10T10:00:00+08:00", "reserve_in", 5000, 155100),
        # another account, consistent
        _movement("N1", "2026-03-02T10:00:00+08:00", "reserve_in", 1000, 1000, account="B"),
        _movement("N2", "2026-03-03T10:00:00+08:00", "adjustment_out", 400, 600, account="B"),
    ])
    ingest_feed(con, landing, "account_movements", PII_KEY)
    assert compute_continuity_breaks(con) == 1
    assert con.execute("SELECT account_id, movement_id, week, expected_balance_fen, reported_balance_fen, delta_fen "
                       "FROM staging.bank_continuity_breaks").fetchall() == [
        ("0200001234", "M4", "2026-W11", 180100, 150100, -30000)]


def test_ingest_assets_materialise_with_their_contract_checks(tmp_path, landing, monkeypatch):
    monkeypatch.setenv(settings.ENV_PII_KEY, PII_KEY.decode())
    write_base(landing)
    write_feed(landing, "orders", [row("orders", order_id="O2", paid_fen="400000")], date="20260311")
    for feed in ("consumptions", "refunds", "evaluations", "complaints", "account_movements"):
        write_feed(landing, feed, [GOOD[feed]])
    warehouse = tmp_path / "dg.duckdb"
    result = dg.materialize(
        [*feed_assets, bank_continuity_breaks, *contract_checks],
        resources={"duckdb": WarehouseResource(database=str(warehouse)),
                   "folders": FoldersResource(landing_dir=str(landing), out_dir=str(tmp_path / "out"))},
    )
    assert result.success
    orders = result.asset_materializations_for_node("orders")[0].metadata
    assert orders["rows_inserted"].value == 1 and orders["files_loaded"].value == 2
    assert orders["quarantined_per_rule"].value == {"orders.paid_le_list_price": 1}
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {f"{feed}_contract" for feed in FEED_ORDER}
    assert all(e.passed for e in checks.values())
    assert checks["orders_contract"].metadata["unexpected_per_expectation"].value == {"orders.paid_le_list_price": 1}
    with connect(warehouse, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM staging.account_movements").fetchall() == [(1,)]


def test_continuity_breaks_after_late_and_corrected_movements_recompute_only_touched_positions(con, landing):
    write_feed(landing, "account_movements", [
        _movement("M1", "2026-03-02T10:00:00+08:00", "deposit", 240000, 240000, order_id="O1"),
        _movement("M2", "2026-03-04T10:00:00+08:00", "release", 50000, 190000),
        _movement("M3", "2026-03-05T10:00:00+08:00", "interest", 100, 160100),  # 30000 missing before it
        _movement("M4", "2026-03-10T10:00:00+08:00", "reserve_in", 5000, 165100),
        _movement("N1", "2026-03-02T10:00:00+08:00", "reserve_in", 1000, 1000, account="B"),
        _movement("N2", "2026-03-03T10:00:00+08:00", "adjustment_out", 400, 500, account="B"),  # 100 missing
    ])
    ingest_feed(con, landing, "account_movements", PII_KEY)
    assert compute_continuity_breaks(con) == 2
    write_feed(landing, "account_movements", [
        _movement("M2b", "2026-03-04T12:00:00+08:00", "release", 30000, 160000),  # the missing one, late
        _movement("M4", "2026-03-10T10:00:00+08:00", "reserve_in", 5000, 165000),  # corrected balance
        _movement("M5", "2026-03-16T10:00:00+08:00", "interest", 50, 165050),
    ], date="20260317")
    ingest_feed(con, landing, "account_movements", PII_KEY)
    expected = [("0200001234", "M4", 165100, 165000, -100), ("B", "N2", 600, 500, -100)]
    query = ("SELECT account_id, movement_id, expected_balance_fen, reported_balance_fen, delta_fen "
             "FROM staging.bank_continuity_breaks ORDER BY account_id, movement_id")
    assert compute_continuity_breaks(con) == 2
    assert con.execute(query).fetchall() == expected
    con.execute("DELETE FROM ops.continuity_runs")  # the first-run path over everything agrees
    assert compute_continuity_breaks(con) == 2
    assert con.execute(query).fetchall() == expected


def test_continuity_seeds_a_quiet_account_from_its_last_movement_months_before(con, landing):
    """The seed is looked for in the 35 days before the new movements first; a quiet account's comes from
    further back, and a new account has none (its first movement is its opening balance)."""
    write_feed(landing, "account_movements", [
        _movement("Q1", "2026-01-05T10:00:00+08:00", "deposit", 240000, 240000, order_id="O1"),
        _movement("Q2", "2026-01-06T10:00:00+08:00", "release", 40000, 200000),
        _movement("A1", "2026-03-02T10:00:00+08:00", "reserve_in", 1000, 1000, account="A"),
    ])
    ingest_feed(con, landing, "account_movements", PII_KEY)
    assert compute_continuity_breaks(con) == 0
    write_feed(landing, "account_movements", [
        _movement("Q3", "2026-03-16T10:00:00+08:00", "release", 50000, 160000),  # 200000 - 50000 expected
        _movement("A2", "2026-03-16T10:00:00+08:00", "reserve_in", 500, 1400, account="A"),  # 1500 expected
        _movement("N1", "2026-03-16T10:00:00+08:00", "reserve_in", 700, 700, account="N"),  # opening
    ], date="20260317")
    ingest_feed(con, landing, "account_movements", PII_KEY)
    query = ("SELECT account_id, movement_id, expected_balance_fen, reported_balance_fen "
             "FROM staging.bank_continuity_breaks ORDER BY account_id")
    expected = [("0200001234", "Q3", 150000, 160000), ("A", "A2", 1500, 1400)]
    assert compute_continuity_breaks(con) == 2
    assert con.execute(query).fetchall() == expected
    con.execute("DELETE FROM ops.continuity_runs")  # the first-run path over everything agrees
    assert compute_continuity_breaks(con) == 2
    assert con.execute(query).fetchall() == expected
