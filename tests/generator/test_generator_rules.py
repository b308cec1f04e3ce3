"""The generated rows obey the standard's rules and the money logic, except where a breach is planted."""

from __future__ import annotations

from data_contracts.feeds import FEEDS, INFLOW_KINDS, MOVEMENT_KINDS
from data_contracts.identifiers import is_valid_uscc

SIGNED = "CASE WHEN kind IN ({}) THEN amount_fen ELSE -amount_fen END".format(
    ", ".join(f"'{k}'" for k in INFLOW_KINDS))


def test_institution_ids_valid_except_planted_bad_uscc(db):
    for feed in FEEDS:
        rows = db.execute(f"SELECT DISTINCT institution_id, _bad FROM {feed}").fetchall()
        bad = [(iid, kind) for iid, kind in rows if not is_valid_uscc(iid)]
        assert bad == [] or all(kind == "bad_uscc" for _, kind in bad), (feed, bad[:3])
        assert any(kind == "bad_uscc" for _, kind in bad) == (feed in ("orders", "institutions"))


def test_county_codes_begin_with_province_and_sit_inside_the_uscc(db):
    rows = db.execute("""SELECT institution_id, province_code, county_code FROM institutions
        WHERE _bad IS NULL""").fetchall()
    assert {p for _, p, _ in rows} >= {"11", "44", "66"}
    for iid, province, county in rows:
        assert len(county) == 6 and county.startswith(province) and iid[2:8] == county
        assert iid[:2] in ("52", "91")


def test_every_filed_institution_has_one_registration_and_online_ones_no_site(db):
    assert db.execute("""SELECT count(*) FROM (SELECT institution_id FROM institutions WHERE _bad IS NULL
        GROUP BY 1 HAVING count(DISTINCT record_date) FILTER (event = 'registered') <> 1)""").fetchone()[0] == 0
    online = db.execute("""SELECT count(*), count(site_lease_expiry), count(fire_safety_ok) FROM institutions
        WHERE mode = 'online' AND _bad IS NULL""").fetchone()
    assert online[0] > 0 and online[1:] == (0, 0)
    assert db.execute("""SELECT count(*) FROM institutions WHERE _bad IS NULL AND
        (staff_verified > staff_count OR staff_verified < 0
         OR (closure_reason IS NULL) <> (event NOT IN ('closed', 'revoked')))
        """).fetchone()[0] == 0


def test_orders_prices_and_packages_are_plausible(db):
    total, over, ok_price = db.execute("""SELECT count(*),
        count(*) FILTER (class_hours > 60 OR course_end > course_start + INTERVAL 3 MONTH),
        count(*) FILTER (list_price_fen / class_hours BETWEEN 4000 AND 28000
                         AND paid_fen <= list_price_fen AND paid_fen > 0)
        FROM orders WHERE _bad IS NULL""").fetchone()
    assert ok_price == total
    assert 0.01 < over / total < 0.15


def test_consumed_hours_never_exceed_the_order_except_planted(db):
    rows = db.execute("""
        WITH orders AS (SELECT DISTINCT order_id, class_hours FROM orders WHERE _bad IS NULL),
        consumed AS (
            SELECT DISTINCT consumption_id, order_id, class_hours, _bad FROM consumptions
            WHERE _bad IS NULL OR _bad = 'consumption_over_hours'),
        per_order AS (
            SELECT order_id, sum(class_hours) AS hours, bool_or(_bad IS NOT NULL) AS planted
            FROM consumed GROUP BY 1)
        SELECT p.planted, p.hours > o.class_hours FROM per_order p JOIN orders o USING (order_id)""").fetchall()
    assert rows
    assert all(over == planted for planted, over in rows)
    assert any(planted for planted, _ in rows)


def test_releases_follow_consumption_except_in_fund_diversion(db, tiny):
    truth = tiny / "truth" / "institutions.csv"
    db.execute(f"CREATE OR REPLACE TABLE stories AS SELECT * FROM read_csv('{truth}', all_varchar=true)")
    excess = dict(db.execute("""
        WITH orders AS (SELECT DISTINCT order_id, paid_fen, class_hours AS order_hours FROM orders WHERE _bad IS NULL),
        consumed AS (
            SELECT DISTINCT c.consumption_id, c.institution_id, c.consumed_at AS ts,
                   o.paid_fen * c.class_hours / o.order_hours AS value
            FROM consumptions c JOIN orders o USING (order_id) WHERE c._bad IS NULL),
        released AS (
            SELECT DISTINCT bank_code, movement_id, institution_id, booked_at AS ts, amount_fen AS value
            FROM account_movements WHERE kind = 'release' AND _bad IS NULL),
        events AS (
            SELECT institution_id, ts, value, 0 AS released FROM consumed
            UNION ALL SELECT institution_id, ts, value, 1 FROM released),
        running AS (
            SELECT institution_id, released,
                   sum(CASE WHEN released = 1 THEN value ELSE -value END)
                       OVER (PARTITION BY institution_id ORDER BY ts, released ROWS UNBOUNDED PRECEDING) AS ahead
            FROM events)
        SELECT s.story, max(ahead) FROM running JOIN stories s USING (institution_id)
        WHERE released = 1 GROUP BY 1""").fetchall())
    assert all(v <= 0.5 for story, v in excess.items() if story != "fund_diversion"), excess
    assert excess["fund_diversion"] > 100_000


def test_continuity_breaks_are_exactly_the_planted_ones(db, tiny):
    found = db.execute(f"""
        WITH m AS (
            SELECT DISTINCT bank_code, movement_id, account_id, booked_at, {SIGNED} AS signed, balance_after_fen
            FROM account_movements WHERE _bad IS NULL),
        chained AS (
            SELECT *, lag(balance_after_fen) OVER w + signed AS expected, row_number() OVER w AS n
            FROM m WINDOW w AS (PARTITION BY bank_code, account_id ORDER BY booked_at, movement_id))
        SELECT movement_id, expected, balance_after_fen - expected FROM chained
        WHERE n > 1 AND balance_after_fen <> expected ORDER BY 1""").fetchall()
    planted = db.execute(f"""SELECT movement_id, expected_balance_fen::BIGINT, delta_fen::BIGINT
        FROM read_csv('{tiny / 'truth' / 'continuity_breaks.csv'}', all_varchar=true) ORDER BY 1""").fetchall()
    assert planted and found == planted


def test_every_movement_kind_is_booked(db):
    kinds = {r[0] for r in db.execute("SELECT DISTINCT kind FROM account_movements WHERE _bad IS NULL").fetchall()}
    assert kinds == set(MOVEMENT_KINDS)


def test_balances_stay_positive_and_deposits_match_paid_orders(db):
    low = db.execute("""SELECT count(*) FILTER (balance_after_fen < 0) FROM account_movements
        WHERE _bad IS NULL""").fetchone()[0]
    assert low == 0
    mismatch = db.execute("""
        WITH d AS (SELECT DISTINCT bank_code, movement_id, order_id, amount_fen FROM account_movements
                   WHERE kind = 'deposit' AND _bad IS NULL),
        o AS (SELECT DISTINCT order_id, paid_fen, paid_at FROM orders WHERE _bad IS NULL)
        SELECT count(*) FILTER (o.paid_fen IS NULL OR o.paid_fen <> d.amount_fen), count(*)
        FROM d LEFT JOIN o USING (order_id)
        """).fetchone()
    assert mismatch[1] > 0 and mismatch[0] == 0


def test_refunds_are_corrected_in_later_deliveries_and_paid_by_the_bank(db):
    corrected = db.execute("""SELECT count(*) FROM (SELECT refund_id FROM refunds WHERE _bad IS NULL
        GROUP BY 1 HAVING count(DISTINCT status) > 1 AND count(DISTINCT _file) > 1)""").fetchone()[0]
    assert corrected > 0
    unpaid = db.execute("""
        WITH span AS (SELECT min(booked_at) AS lo, max(booked_at) - INTERVAL 1 DAY AS hi FROM account_movements),
        paid AS (SELECT DISTINCT refund_id, order_id, requested_fen FROM refunds, span
                 WHERE status = 'paid' AND _bad IS NULL AND paid_at BETWEEN lo AND hi),
        bank AS (SELECT order_id, sum(amount_fen) AS amount FROM
                 (SELECT DISTINCT bank_code, movement_id, order_id, amount_fen FROM account_movements
                  WHERE kind = 'refund' AND _bad IS NULL) GROUP BY 1)
        SELECT count(*) FROM paid LEFT JOIN bank USING (order_id) WHERE bank.amount IS NULL
           OR bank.amount < paid.requested_fen""").fetchone()[0]
    assert unpaid == 0
    assert db.execute("""SELECT count(*) FROM refunds WHERE _bad IS NULL AND NOT (
        (status = 'requested' AND decided_at IS NULL AND paid_at IS NULL) OR
        (status IN ('approved', 'rejected') AND decided_at IS NOT NULL AND paid_at IS NULL) OR
        (status = 'paid' AND paid_at >= decided_at))""").fetchone()[0] == 0


def test_deliveries_overlap_with_identical_rows_and_late_rows(db):
    resent = db.execute("""SELECT count(*) FROM (SELECT consumption_id FROM consumptions WHERE _bad IS NULL
        GROUP BY 1 HAVING count(DISTINCT _file) > 1 AND count(DISTINCT (consumed_at, class_hours, order_id)) = 1)
        """).fetchone()[0]
    late = db.execute("""SELECT count(*) FROM consumptions WHERE _bad IS NULL
        AND _delivery > date_trunc('week', consumed_at)::DATE + 9""").fetchone()[0]
    assert resent > 0 and late > 0


def test_planted_bad_rows_break_their_rule(db):
    kinds = dict(db.execute("SELECT kind, count(*) FROM bad_rows GROUP BY 1").fetchall())
    assert set(kinds) >= {"bad_uscc", "negative_money", "float_money", "unknown_enum", "future_timestamp",
                          "consumption_over_hours", "refund_unknown_order", "duplicate_key", "stars_out_of_range",
                          "non_positive_hours", "unknown_order"}
    total = db.execute("SELECT sum(rows::BIGINT) FROM deliveries WHERE duplicate_of IS NULL").fetchone()[0]
    assert sum(kinds.values()) / total < 0.005
    q = db.execute
    assert q("SELECT bool_and(paid_fen < 0) FROM orders WHERE _bad = 'negative_money'").fetchone()[0]
    assert q("SELECT bool_and(paid_at::DATE > _delivery) FROM orders WHERE _bad = 'future_timestamp'").fetchone()[0]
    assert q("SELECT bool_and(record_date > _delivery) FROM institutions WHERE _bad = 'future_timestamp'").fetchone()[0]
    assert q("SELECT bool_and(channel = 'paypal') FROM orders WHERE _bad = 'unknown_enum'").fetchone()[0]
    assert q("""SELECT bool_and(stars NOT BETWEEN 1 AND 5) FROM evaluations
        WHERE _bad = 'stars_out_of_range'""").fetchone()[0]
    assert q("""SELECT bool_and(order_id NOT IN (SELECT order_id FROM orders)) FROM refunds
        WHERE _bad = 'refund_unknown_order'""").fetchone()[0]
    for feed, key in (("complaints", "complaint_id"), ("evaluations", "evaluation_id")):
        assert q(f"""SELECT bool_and((SELECT count(*) FROM {feed} o WHERE o.{key} = b.{key} AND o._file = b._file) = 2)
            FROM {feed} b WHERE _bad = 'duplicate_key'""").fetchone()[0]


def test_classes_come_after_payment_and_within_the_course(db):
    early = db.execute("""
        WITH o AS (SELECT DISTINCT order_id, paid_at, course_start, course_end FROM orders WHERE _bad IS NULL)
        SELECT count(*) FILTER (c.consumed_at <= o.paid_at OR c.consumed_at::DATE < o.course_start
                                OR c.consumed_at::DATE > o.course_end), count(*)
        FROM consumptions c JOIN o USING (order_id) WHERE c._bad IS NULL""").fetchone()
    assert early[1] > 0 and early[0] == 0
