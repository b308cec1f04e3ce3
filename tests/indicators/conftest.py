"""A small hand-made warehouse for the indicator tests: a few institutions, each built to exercise a few
indicators, over ISO weeks 2026-W01 (Monday 2025-12-29) to 2026-W14 (Sunday 2026-04-05).

Every expected value in the tests is worked out by hand from these rows; the comments say which rows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from indicators.compute import compute_institution_week_indicators
from pipelines.warehouse import connect, create_staging_tables

W01_MONDAY = date(2025, 12, 29)


def day(week: int, dow: int) -> date:
    """Date of ISO weekday `dow` (1 = Monday) in 2026-W<week>."""
    return W01_MONDAY + timedelta(days=7 * (week - 1) + dow - 1)


def at(week: int, dow: int, hhmm: str = "10:00") -> str:
    """A Shanghai timestamp with offset, as the standard writes it."""
    return f"{day(week, dow).isoformat()}T{hhmm}:00+08:00"


def insert(con, table: str, rows: list[dict]) -> None:
    for row in rows:
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        con.execute(f"INSERT INTO staging.{table} ({cols}) VALUES ({marks})", list(row.values()))


def filing(institution_id: str, record_date: str, event: str = "registered", **fields) -> dict:
    base = {
        "institution_id": institution_id, "record_date": record_date, "event": event,
        "name": f"{institution_id}培训学校", "province_code": "31", "county_code": "310101",
        "category": "academic", "subject": "math", "mode": "offline", "licence_no": "L1",
        "licence_expiry": "2027-12-31", "site_lease_expiry": "2027-12-31", "staff_count": 10,
        "staff_verified": 10, "reserve_required_fen": 0,
    }
    return base | fields


def order(order_id: str, institution_id: str, paid_at: str, paid_fen: int, list_price_fen: int | None = None,
          class_hours: int = 10, course_start: str = "2026-03-01", course_end: str = "2026-04-30",
          status: str = "paid", **extra) -> dict:
    return {
        "order_id": order_id, "institution_id": institution_id, "paid_at": paid_at, "paid_fen": paid_fen,
        "list_price_fen": list_price_fen or paid_fen, "class_hours": class_hours, "course_start": course_start,
        "course_end": course_end, "status": status,
    } | extra


def consumption(cid: str, order_id: str, institution_id: str, consumed_at: str, class_hours: int) -> dict:
    return {"consumption_id": cid, "order_id": order_id, "institution_id": institution_id,
            "consumed_at": consumed_at, "class_hours": class_hours}


def refund(rid: str, institution_id: str, requested_at: str, requested_fen: int = 100, status: str = "requested",
           paid_at: str | None = None, decided_at: str | None = None, order_id: str = "none") -> dict:
    return {"refund_id": rid, "order_id": order_id, "institution_id": institution_id, "requested_at": requested_at,
            "requested_fen": requested_fen, "status": status, "paid_at": paid_at,
            "decided_at": decided_at or paid_at}


def movement(mid: str, institution_id: str, booked_at: str, kind: str, amount_fen: int, balance_after_fen: int,
             account_id: str = "ACC", bank_code: str = "B1") -> dict:
    return {"movement_id": mid, "bank_code": bank_code, "account_id": f"{account_id}-{institution_id}",
            "institution_id": institution_id, "booked_at": booked_at, "kind": kind, "amount_fen": amount_fen,
            "balance_after_fen": balance_after_fen}


def complaint(cid: str, institution_id: str, received_at: str, category: str = "other", text: str = "",
              status: str = "open", responded_at: str | None = None, resolved_at: str | None = None) -> dict:
    return {"complaint_id": cid, "institution_id": institution_id, "received_at": received_at,
            "category": category, "text": text, "status": status, "responded_at": responded_at,
            "resolved_at": resolved_at}


def rating(eid: str, institution_id: str, rated_at: str, stars: int) -> dict:
    return {"evaluation_id": eid, "order_id": "none", "institution_id": institution_id, "rated_at": rated_at,
            "stars": stars}


def build_handmade(con) -> None:
    """The shared rows. Institutions: M money, S sales, R refunds, K complaints, T ratings, F filing,
    X closes in W11, N registers in W11 (no orders at all), B week boundaries, Z anchors W01 and W14."""
    create_staging_tables(con)
    insert(con, "institutions", [
        filing(i, "2025-06-01") for i in ("M", "S", "R", "K", "T", "B", "Z")
    ] + [
        filing("M", "2025-07-01", "updated", reserve_required_fen=20_000),
        filing("F", "2025-06-01", licence_expiry="2026-04-01", site_lease_expiry="2026-03-20", staff_verified=7),
        filing("F", "2026-01-05", "renamed", name="F新名", licence_expiry="2026-04-01",
               site_lease_expiry="2026-03-20", staff_verified=7),
        filing("F", "2026-02-20", "legal_rep_changed", name="F新名", licence_expiry="2026-04-01",
               site_lease_expiry="2026-03-20", staff_verified=7),
        # the relocation record leaves staff_verified empty: the filing's last non-null value (7) stays
        filing("F", "2026-03-09", "relocated", name="F新名", licence_expiry="2026-04-01",
               site_lease_expiry="2026-09-30", staff_verified=None),
        filing("X", "2025-11-01"),
        filing("X", "2026-03-11", "closed", closure_reason="abnormal"),
        filing("X", "2026-03-11", "updated"),   # same day as the closure: the closure still wins
        filing("N", "2026-03-15"),
    ])
    insert(con, "orders", [
        # M: m1 12000 fen for 10 hours (list 20000), m2 6000 for 6 hours, m3 cancelled (ignored everywhere)
        order("m1", "M", at(10, 2), 12_000, 20_000, class_hours=10),
        order("m2", "M", at(10, 3), 6_000, class_hours=6),
        order("m3", "M", at(10, 3), 50_000, class_hours=10, status="cancelled"),
        # S: one order a week W02..W09 (paid = list), then a W10 spike of two over-cap orders
        *[order(f"s{w}", "S", at(w, 2), fen) for w, fen in
          zip(range(2, 10), (1000, 1000, 2000, 1000, 3000, 1000, 1000, 2000))],
        order("s10a", "S", at(10, 2), 3000, 4000, class_hours=61),
        order("s10b", "S", at(10, 3), 2000, 4000, course_start="2026-03-01", course_end="2026-06-02"),
        # exactly 60 hours and exactly 3 months: within the cap
        order("s9cap", "S", at(9, 4), 1, 1, class_hours=60, course_start="2026-03-01", course_end="2026-06-01"),
        # B: Sunday 23:59 belongs to W10; Monday 00:00 (+08:00, written in UTC too) to W11
        order("b1", "B", "2026-03-08T23:59:00+08:00", 1000),
        order("b2", "B", "2026-03-09T00:00:00+08:00", 2000),
        order("b3", "B", "2026-03-08T16:00:00+00:00", 4000),
    ])
    insert(con, "consumptions", [
        consumption("c1", "m1", "M", at(10, 4), 2),   # 12000 * 2/10 = 2400
        consumption("c2", "m1", "M", at(11, 2), 3),   # 3600
        consumption("c3", "m2", "M", at(11, 3), 6),   # 6000
        consumption("c4", "m3", "M", at(11, 3), 1),   # cancelled order: ignored
    ])
    insert(con, "refunds", [
        # M: 8000 refunded on m1 in W12 although only 12000 - 6000 = 6000 is left
        refund("rm1", "M", at(12, 1), 8000, "paid", paid_at=at(12, 5), order_id="m1"),
        # R: one request a week W02..W08, paid two days later
        *[refund(f"r{w}", "R", at(w, 1), status="paid", paid_at=at(w, 3)) for w in range(2, 9)],
        refund("r9", "R", at(9, 1), status="paid", paid_at=at(10, 5)),   # 11 days, closed before overdue
        refund("r10a", "R", at(10, 1, "09:00")),                        # open: overdue from Tue W11
        refund("r10b", "R", at(10, 5)),                                 # open: overdue from Mon W12
        refund("r10c", "R", at(10, 2), status="rejected", decided_at=at(11, 3)),   # rejected the day it was due
        refund("r10d", "R", "2026-03-08T23:59:00+08:00", status="paid", paid_at=at(12, 5)),
        # two requests in W13, rejected the same day (no effect on overdue or median days)
        *[refund(f"r13{x}", "R", at(13, 1), status="rejected", decided_at=at(13, 1, "18:00")) for x in "ab"],
    ])
    insert(con, "account_movements", [
        movement("1", "M", at(10, 2), "deposit", 12_000, 12_000),
        movement("2", "M", at(10, 3), "deposit", 6_000, 18_000),
        movement("3", "M", at(10, 4), "reserve_in", 5_000, 23_000),
        movement("4", "M", at(11, 4), "release", 15_000, 8_000),
        movement("5", "M", at(12, 2), "adjustment_out", 1_500, 6_500),
        movement("6", "M", at(13, 2), "reserve_out", 2_000, 4_500),
        movement("7", "M", at(11, 1), "deposit", 1_000, 1_000, account_id="ACC2", bank_code="B2"),
    ])
    insert(con, "bank_continuity_breaks", [
        {"bank_code": "B1", "account_id": "ACC-M", "institution_id": "M", "week": w}
        for w in ("2026-W10", "2026-W10", "2026-W12")
    ])
    insert(con, "complaints", [
        complaint("k0", "K", at(5, 3)),
        complaint("k1", "K", at(10, 1), "closure_or_absconding"),
        complaint("k2", "K", at(10, 2), "refund_difficulty", "老板跑路了,联系不上", "resolved",
                  responded_at=at(10, 3), resolved_at=at(11, 2)),
        complaint("k3", "K", at(10, 3), "teaching_quality", "老师态度差", "rejected", responded_at=at(10, 4)),
        complaint("k4", "K", "2026-03-09T00:00:00+08:00"),
    ])
    insert(con, "evaluations", [
        rating("e1", "T", at(2, 1), 5), rating("e2", "T", at(4, 1), 4),
        rating("e3", "T", at(8, 1), 3), rating("e4", "T", at(10, 1), 2),
        rating("z1", "Z", "2025-12-29T00:00:00+08:00", 5), rating("z14", "Z", "2026-04-05T23:59:00+08:00", 5),
    ])


@pytest.fixture(scope="session")
def handmade_warehouse(tmp_path_factory):
    """The shared warehouse with the mart computed once (tests only read it)."""
    path = tmp_path_factory.mktemp("indicators") / "warehouse.duckdb"
    con = connect(path)
    build_handmade(con)
    compute_institution_week_indicators(con)
    con.close()
    return path


@pytest.fixture(scope="session")
def mart(handmade_warehouse) -> Callable[[str, int, str], float | None]:
    """mart(institution, week number, indicator) -> the value (None for NULL); fails on a missing row."""
    con = connect(handmade_warehouse, read_only=True)
    rows = con.execute("SELECT * FROM marts.institution_week_indicators").df()
    con.close()
    table = {(r["institution_id"], r["week"]): r for r in rows.to_dict("records")}

    def value(institution_id: str, week: int, name: str) -> float | None:
        v = table[(institution_id, f"2026-W{week:02d}")][name]
        return None if v is None or v != v else v

    value.rows = table
    return value


@pytest.fixture
def insert_rows():
    """insert(con, table, rows): plain INSERTs of dicts into staging tables."""
    return insert


@pytest.fixture
def warehouse(tmp_path):
    """A fresh, empty warehouse with the staging tables, for tests that change data."""
    con = connect(tmp_path / "warehouse.duckdb")
    create_staging_tables(con)
    yield con
    con.close()
