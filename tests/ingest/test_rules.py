"""Every contract rule: a hand-made breaking row lands in quarantine under that rule, GX flags the same row,
and the valid rows of the same file load."""

from __future__ import annotations

import pytest

from data_contracts.expectations import validate_batch
from data_contracts.feeds import FEEDS, PII_PHONE_COLUMN
from data_contracts.rules import RULES, TYPE_PATTERNS, OneOf, Parses, Required, Uscc
from pipelines.ingest import ingest_landing
from pipelines.ingest.contract_check import check_contract
from pipelines.ingest.loading import batch_relation_sql, batch_table, prepare
from pipelines.warehouse import connect
from ingest_helpers import GOOD, INST, INST2, PII_KEY, row, uscc, write_feed

# Hand-picked text that breaks each type (the float keeps its decimal point: never rounded).
BAD_TEXT = {"BIGINT": "12.5", "INTEGER": "1.5", "DATE": "2026/03/01", "TIMESTAMPTZ": "2026-03-02T19:30:00",
            "BOOLEAN": "yes"}

WRONG_CHECK = INST[:17] + ("0" if INST[17] != "0" else "1")

# Rules with a specific breaking row: (rule, feed, changes to the valid row).
SPECIFIC = [
    ("institutions.record_date_not_after_delivery", "institutions", {"record_date": "2026-03-11"}),
    ("institutions.province_code.known", "institutions", {"province_code": "99", "county_code": "990101"}),
    ("institutions.county_code.format", "institutions", {"county_code": "11010"}),
    ("institutions.county_in_province", "institutions", {"county_code": "120101"}),
    ("institutions.licence_required_offline", "institutions", {"licence_no": ""}),
    ("institutions.site_lease_null_online", "institutions", {"mode": "online", "fire_safety_ok": ""}),
    ("institutions.fire_safety_null_online", "institutions", {"mode": "online", "site_lease_expiry": ""}),
    ("institutions.staff_count.non_negative", "institutions", {"staff_count": "-1", "staff_verified": "-1"}),
    ("institutions.staff_verified.non_negative", "institutions", {"staff_verified": "-1"}),
    ("institutions.staff_verified_le_staff_count", "institutions", {"staff_verified": "11"}),
    ("institutions.reserve_required_fen.non_negative", "institutions", {"reserve_required_fen": "-5"}),
    ("institutions.closure_reason_only_when_closed", "institutions", {"closure_reason": "abnormal"}),
    ("orders.institution_filed", "orders", {"institution_id": INST2}),
    ("orders.list_price_fen.positive", "orders", {"list_price_fen": "0", "paid_fen": "1"}),
    ("orders.paid_fen.positive", "orders", {"paid_fen": "-100"}),
    ("orders.paid_le_list_price", "orders", {"paid_fen": "300001"}),
    ("orders.class_hours.positive", "orders", {"class_hours": "0"}),
    ("orders.course_end_not_before_start", "orders", {"course_end": "2026-03-02"}),
    ("orders.paid_at_not_after_delivery", "orders", {"paid_at": "2026-03-11T00:00:00+08:00"}),
    ("orders.parent_phone.format", "orders", {"parent_phone": "1281234567"}),
    ("consumptions.order_known", "consumptions", {"order_id": "O404"}),
    ("consumptions.institution_is_orders", "consumptions", {"institution_id": INST2}),
    ("consumptions.class_hours.positive", "consumptions", {"class_hours": "0"}),
    ("refunds.order_known", "refunds", {"order_id": "O404"}),
    ("refunds.institution_is_orders", "refunds", {"institution_id": INST2}),
    ("refunds.requested_fen.positive", "refunds", {"requested_fen": "0"}),
    ("refunds.decided_at_null_while_requested", "refunds", {"decided_at": "2026-03-07T10:00:00+08:00"}),
    ("refunds.paid_at_only_when_paid", "refunds", {"status": "approved", "decided_at": "2026-03-07T10:00:00+08:00",
                                                   "paid_at": "2026-03-08T10:00:00+08:00"}),
    ("account_movements.amount_fen.positive", "account_movements", {"amount_fen": "-240000"}),
    ("account_movements.balance_after_fen.non_negative", "account_movements", {"balance_after_fen": "-1"}),
    ("account_movements.order_id_for_deposit_refund", "account_movements", {"order_id": ""}),
    ("account_movements.order_id_only_deposit_refund", "account_movements", {"kind": "release"}),
    ("complaints.parent_phone.format", "complaints", {"parent_phone": "139-1234-5678"}),
    ("evaluations.order_known", "evaluations", {"order_id": "O404"}),
    ("evaluations.stars.range", "evaluations", {"stars": "6"}),
]


def _generic_cases():
    """Type, enumeration and presence rules: the same breaking text for every column of a kind."""
    specific = {name for name, _, _ in SPECIFIC}
    for rule in RULES:
        if rule.name in specific or rule.name.endswith("key_unique_in_file"):
            continue
        form, feed = rule.form, FEEDS[rule.feed]
        if isinstance(form, Parses) and form.pattern == TYPE_PATTERNS.get(feed.column(form.column).type):
            yield rule.name, rule.feed, {form.column: BAD_TEXT[feed.column(form.column).type]}
        elif isinstance(form, Required):
            column = PII_PHONE_COLUMN if form.column == "parent_pseudonym" else form.column
            yield rule.name, rule.feed, {column: ""}
        elif isinstance(form, OneOf):
            yield rule.name, rule.feed, {form.column: "bogus"}
        elif isinstance(form, Uscc):
            yield rule.name, rule.feed, {form.column: WRONG_CHECK}


CASES = SPECIFIC + list(_generic_cases())
FILE = "{feed}_20260310.csv"
O9 = row("orders", order_id="O9", class_hours="10")
HOURS = [row("consumptions", consumption_id="K9a", order_id="O9", class_hours="6"),
         row("consumptions", consumption_id="K9b", order_id="O9", class_hours="6",
             consumed_at="2026-03-06T10:00:00+08:00")]


def _unique_key(feed: str, i: int) -> dict:
    """A fresh key for the i-th breaking row so that rows never collide."""
    if feed == "institutions":
        return {"institution_id": uscc(f"91110108MA01AB{i:03d}")}
    key = FEEDS[feed].key[-1]
    return {key: f"{GOOD[feed][key]}-bad{i}"}


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    """One landing with every breaking row, ingested once; returns (con, where each case's row is, GX flags)."""
    base = tmp_path_factory.mktemp("rules")
    landing = base / "landing"
    rows = {feed: [GOOD[feed]] for feed in FEEDS}
    rows["orders"].append(O9)
    rows["consumptions"] += HOURS
    where = {}
    for i, (rule, feed, changes) in enumerate(CASES):
        rows[feed].append(row(feed, **{**_unique_key(feed, i), **changes}))
        where[rule] = (FILE.format(feed=feed), len(rows[feed]))
    where["consumptions.hours_within_order"] = (FILE.format(feed="consumptions"), 3)
    for feed in FEEDS:  # two rows with one key at the end of every file
        twin = row(feed, **_unique_key(feed, 900))
        rows[feed] += [twin, twin]
        where[f"{feed}.key_unique_in_file"] = (FILE.format(feed=feed), len(rows[feed]))
    for feed, feed_rows in rows.items():
        write_feed(landing, feed, feed_rows)
    con = connect(base / "warehouse.duckdb")
    ingest_landing(con, landing, PII_KEY)
    prepare(con)
    flags = {}
    for feed in FEEDS:
        flags.update(validate_batch(feed, con.sql(batch_relation_sql(FEEDS[feed], batch_table(feed))).df()))
    yield con, where, flags
    con.close()


def test_every_rule_has_a_breaking_row():
    covered = {name for name, _, _ in CASES} | {"consumptions.hours_within_order"} | {
        f"{feed}.key_unique_in_file" for feed in FEEDS}
    assert covered == {r.name for r in RULES}


@pytest.mark.parametrize("rule", sorted({r.name for r in RULES}))
def test_breaking_row_is_quarantined_under_its_rule(routed, rule):
    con, where, _ = routed
    file_name, row_number = where[rule]
    rules = {r for (r,) in con.execute(
        "SELECT rule FROM quarantine.rows WHERE file_name = ? AND row_number = ? AND released_at IS NULL",
        [file_name, row_number]).fetchall()}
    assert rule in rules
    feed = rule.split(".")[0]
    staged = con.execute(f"SELECT count(*) FROM staging.{feed}_history WHERE _file = ? AND _row = ?",
                         [file_name, row_number]).fetchall()[0][0]
    assert staged == 0


@pytest.mark.parametrize("rule", sorted({r.name for r in RULES}))
def test_gx_suite_flags_the_same_row(routed, rule):
    _, where, flags = routed
    assert where[rule] in flags[rule]


def test_valid_rows_of_the_same_files_load(routed):
    con, _, _ = routed
    for feed in FEEDS:
        rows = con.execute(f"SELECT _row FROM staging.{feed} WHERE _row = 1").fetchall()
        assert rows == [(1,)], feed
    # the first consumption of O9 fits its 10 hours and loads; the second would make 12
    assert con.execute("SELECT consumption_id FROM staging.consumptions WHERE order_id = 'O9'").fetchall() == [("K9a",)]


def test_twin_keys_in_one_file_are_both_held(routed):
    con, where, _ = routed
    file_name, last = where["orders.key_unique_in_file"]
    held = con.execute("SELECT row_number FROM quarantine.rows WHERE file_name = ? AND rule = ? ORDER BY 1",
                       [file_name, "orders.key_unique_in_file"]).fetchall()
    assert held == [(last - 1,), (last,)]


def test_contract_checks_pass_when_routing_is_complete(routed):
    con, _, _ = routed
    for feed in FEEDS:
        outcome = check_contract(con, feed)
        assert outcome.passed and outcome.rows_flagged > 0, feed


@pytest.mark.parametrize("tamper, expected", [
    # the breaking row's quarantine entry removed: it escaped
    ("DELETE FROM quarantine.rows WHERE file_name = $file AND row_number = $row", (0, 1)),
    # a loaded version carrying the lineage of the breaking row, as if routing had let it through
    ("UPDATE staging.orders_history SET _file = $file, _row = $row "
     "WHERE order_id = (SELECT min(order_id) FROM staging.orders_history)", (1, 0)),
], ids=["escaped_quarantine", "reached_staging"])
def test_contract_check_fails_when_a_breaking_row_escapes_or_reaches_staging(routed, tamper, expected):
    con, where, _ = routed
    file_name, row_number = where["orders.paid_le_list_price"]
    con.execute("BEGIN TRANSACTION")
    con.execute(tamper, {"file": file_name, "row": row_number})
    try:
        outcome = check_contract(con, "orders")
        assert (outcome.reached_staging, outcome.escaped_quarantine, outcome.passed) == (*expected, False)
    finally:
        con.execute("ROLLBACK")


def test_gx_flags_rows_without_fingerprinting_each_batch(routed, monkeypatch):
    """GX hashes every value of a pandas batch for its metadata (a fifth of a national contract check); the
    contract checks switch that off and still flag the same rows."""
    from great_expectations.execution_engine import pandas_execution_engine

    con, _, flags = routed

    def refuse(df):
        raise AssertionError("GX hashed a batch")

    monkeypatch.setattr(pandas_execution_engine, "hash_pandas_dataframe", refuse)
    orders = validate_batch("orders", con.sql(batch_relation_sql(FEEDS["orders"], batch_table("orders"))).df())
    assert orders == {rule: rows for rule, rows in flags.items() if rule.startswith("orders.")}
