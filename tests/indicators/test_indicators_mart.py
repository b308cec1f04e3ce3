"""The mart as a whole: the active set, week boundaries, identity columns, late rows, the known-at-the-time view."""

from indicators.compute import compute_institution_week_indicators
from indicators.registry import NAMES

MART = "marts.institution_week_indicators"


def weeks_of(mart, institution_id: str) -> list[str]:
    return sorted(week for (inst, week) in mart.rows if inst == institution_id)


def test_closed_institution_leaves_the_active_set(mart):
    # closed on Wednesday of W11: still listed in W11 (not closed before the week start), gone from W12
    assert weeks_of(mart, "X") == [f"2026-W{w:02d}" for w in range(1, 12)]


def test_institution_enters_the_active_set_in_its_registration_week(mart):
    # registered Sunday 2026-03-15, the last day of W11
    assert weeks_of(mart, "N") == [f"2026-W{w:02d}" for w in range(11, 15)]


def test_calendar_spans_first_to_last_week_in_the_data(mart):
    # Z's ratings on Monday 00:00 of W01 and Sunday 23:59 of W14 bound the calendar
    assert weeks_of(mart, "Z") == [f"2026-W{w:02d}" for w in range(1, 15)]


def test_week_boundaries_sunday_2359_vs_monday_0000(mart):
    # b1 Sunday 23:59 +08:00 counts in W10; b2 Monday 00:00 +08:00 and b3 (the same instant in UTC) in W11
    assert mart("B", 10, "prepaid_liability_fen") == 1_000
    assert mart("B", 11, "prepaid_liability_fen") == 1_000 + 2_000 + 4_000


def test_identity_columns_come_from_the_filing_at_week_end(mart):
    f1, f10 = mart.rows[("F", "2026-W01")], mart.rows[("F", "2026-W10")]
    assert (f1["name"], f10["name"]) == ("F培训学校", "F新名")      # renamed 2026-01-05 (W02)
    assert str(f10["week_start"])[:10] == "2026-03-02" and str(f10["week_end"])[:10] == "2026-03-08"
    assert (f10["province_code"], f10["county_code"], f10["category"], f10["mode"]) == (
        "31", "310101", "academic", "offline")


def test_columns_follow_the_contract(handmade_warehouse):
    from pipelines.warehouse import connect

    con = connect(handmade_warehouse, read_only=True)
    described = con.execute(f"DESCRIBE {MART}").fetchall()
    con.close()
    identity = ["institution_id", "week", "week_start", "week_end", "province_code", "county_code", "name",
                "category", "mode"]
    assert [c[0] for c in described] == identity + list(NAMES) + ["_computed_at", "_changed_at"]
    assert {c[1] for c in described[len(identity):-2]} == {"DOUBLE"}
    assert {c[1] for c in described[-2:]} == {"TIMESTAMP WITH TIME ZONE"}
    assert [c[1] for c in described[2:4]] == ["DATE", "DATE"]


def _seed(con, insert_rows):
    insert_rows(con, "institutions", [{"institution_id": "A", "record_date": "2025-06-01", "event": "registered",
                                       "name": "A", "province_code": "31", "county_code": "310101"}])
    insert_rows(con, "orders", [
        {"order_id": "a1", "institution_id": "A", "paid_at": "2026-03-03T10:00:00+08:00", "paid_fen": 1_000,
         "list_price_fen": 1_000, "class_hours": 10, "status": "paid", "_delivery_date": "2026-03-03"},
        {"order_id": "a2", "institution_id": "A", "paid_at": "2026-03-17T10:00:00+08:00", "paid_fen": 500,
         "list_price_fen": 500, "class_hours": 10, "status": "paid", "_delivery_date": "2026-03-17"},
    ])


def _liability(con) -> dict[str, float]:
    return dict(con.execute(f"SELECT week, prepaid_liability_fen FROM {MART} ORDER BY week").fetchall())


def test_late_row_recomputes_only_the_weeks_asked_for(warehouse, insert_rows):
    _seed(warehouse, insert_rows)
    assert compute_institution_week_indicators(warehouse) == 3                       # W10, W11, W12
    assert _liability(warehouse) == {"2026-W10": 1_000, "2026-W11": 1_000, "2026-W12": 1_500}
    # a W10 order delivered in W13
    insert_rows(warehouse, "orders", [
        {"order_id": "late", "institution_id": "A", "paid_at": "2026-03-04T10:00:00+08:00", "paid_fen": 2_000,
         "list_price_fen": 2_000, "class_hours": 10, "status": "paid", "_delivery_date": "2026-03-24"}])
    assert compute_institution_week_indicators(warehouse, weeks=["2026-W10", "2026-W11"]) == 2
    assert _liability(warehouse) == {"2026-W10": 3_000, "2026-W11": 3_000, "2026-W12": 1_500}   # W12 untouched
    compute_institution_week_indicators(warehouse)
    assert _liability(warehouse) == {"2026-W10": 3_000, "2026-W11": 3_000, "2026-W12": 3_500}


def test_weeks_on_an_empty_mart_create_it(warehouse, insert_rows):
    _seed(warehouse, insert_rows)
    assert compute_institution_week_indicators(warehouse, weeks=["2026-W11"]) == 1
    assert _liability(warehouse) == {"2026-W11": 1_000}


def test_as_of_delivery_counts_a_late_row_from_its_delivery(warehouse, insert_rows):
    _seed(warehouse, insert_rows)
    insert_rows(warehouse, "orders", [
        {"order_id": "late", "institution_id": "A", "paid_at": "2026-03-04T10:00:00+08:00", "paid_fen": 2_000,
         "list_price_fen": 2_000, "class_hours": 10, "status": "paid", "_delivery_date": "2026-03-16"}])
    compute_institution_week_indicators(warehouse, as_of_delivery=True)
    assert _liability(warehouse) == {"2026-W10": 1_000, "2026-W11": 1_000, "2026-W12": 3_500}
    compute_institution_week_indicators(warehouse)
    assert _liability(warehouse) == {"2026-W10": 3_000, "2026-W11": 3_000, "2026-W12": 3_500}


def test_a_consumption_after_every_other_row_extends_the_calendar_only_if_its_order_was_paid(warehouse, insert_rows):
    _seed(warehouse, insert_rows)                                                     # orders in W10 and W12
    insert_rows(warehouse, "orders", [
        {"order_id": "p", "institution_id": "A", "paid_at": "2026-03-18T10:00:00+08:00", "paid_fen": 900,
         "list_price_fen": 900, "class_hours": 9, "status": "pending", "_delivery_date": "2026-03-18"}])
    insert_rows(warehouse, "consumptions", [
        {"consumption_id": "c1", "order_id": "a1", "institution_id": "A", "consumed_at": "2026-03-31T10:00:00+08:00",
         "class_hours": 1, "_delivery_date": "2026-03-31"},                          # W14, paid order
        {"consumption_id": "c2", "order_id": "p", "institution_id": "A", "consumed_at": "2026-04-14T10:00:00+08:00",
         "class_hours": 1, "_delivery_date": "2026-04-14"}])                        # W16, order not paid
    compute_institution_week_indicators(warehouse)
    assert list(_liability(warehouse)) == [f"2026-W{w:02d}" for w in range(10, 15)]
