"""Hand-made landing files for the ingestion tests: one valid row per feed, written as the standard says."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from data_contracts.feeds import FEEDS
from data_contracts.identifiers import uscc_check_char

PII_KEY = b"test-key-not-secret-0123456789abcdef"
PHONE = "13812345678"
COMPLAINT_PHONE = "13912345678"


def uscc(first17: str) -> str:
    return first17 + uscc_check_char(first17)


INST = uscc("91110108MA01ABCD1")
INST2 = uscc("91110108MA01ABCD2")

GOOD = {
    "institutions": dict(
        institution_id=INST, record_date="2026-03-01", event="registered", name="北京启明教育", province_code="11",
        county_code="110108", category="academic", subject="math", mode="offline", licence_no="京教民1101082026001",
        licence_expiry="2028-12-31", site_lease_expiry="2027-06-30", fire_safety_ok="true", staff_count="10",
        staff_verified="9", supervision_bank="ICBC", supervision_account="0200001234",
        reserve_required_fen="5000000", closure_reason="",
    ),
    "orders": dict(
        order_id="O1", institution_id=INST, course_id="C1", parent_phone=PHONE, student_grade="g5",
        list_price_fen="300000", paid_fen="240000", class_hours="40", course_start="2026-03-03",
        course_end="2026-05-31", paid_at="2026-03-02T19:30:00+08:00", channel="wechat_pay", status="paid",
    ),
    "consumptions": dict(
        consumption_id="K1", order_id="O1", institution_id=INST, consumed_at="2026-03-05T10:00:00+08:00",
        class_hours="2",
    ),
    "refunds": dict(
        refund_id="R1", order_id="O1", institution_id=INST, requested_at="2026-03-06T10:00:00+08:00",
        requested_fen="10000", status="requested", decided_at="", paid_at="",
    ),
    "account_movements": dict(
        movement_id="M1", bank_code="ICBC", account_id="0200001234", institution_id=INST,
        booked_at="2026-03-02T19:31:00+08:00", kind="deposit", amount_fen="240000", order_id="O1",
        balance_after_fen="240000",
    ),
    "complaints": dict(
        complaint_id="Q1", institution_id=INST, order_id="O1", received_at="2026-03-07T09:00:00+08:00",
        category="refund_difficulty", text="老师联系不上", parent_phone=COMPLAINT_PHONE, status="open",
        responded_at="", resolved_at="",
    ),
    "evaluations": dict(
        evaluation_id="E1", order_id="O1", institution_id=INST, rated_at="2026-03-08T09:00:00+08:00", stars="4",
    ),
}


def row(feed: str, **changes) -> dict:
    return {**GOOD[feed], **changes}


def csv_bytes(feed: str, rows: list[dict], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(FEEDS[feed].column_names), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode(encoding)


def write_feed(landing: Path, feed: str, rows: list[dict], date: str = "20260310", seq: int | None = None,
               encoding: str = "utf-8", manifest: dict | None = None) -> Path:
    folder = landing / feed
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{feed}_{date}{'' if seq is None else f'_{seq}'}.csv"
    path.write_bytes(csv_bytes(feed, rows, encoding))
    if manifest is not None:
        path.with_name(path.name + ".manifest.json").write_text(json.dumps(manifest))
    return path


def write_base(landing: Path) -> None:
    """A filed institution and its order, so that references from the other feeds resolve."""
    write_feed(landing, "institutions", [GOOD["institutions"]])
    write_feed(landing, "orders", [GOOD["orders"]])
