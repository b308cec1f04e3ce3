"""The seven feeds of the interchange standard: columns, types, keys and enumerations.

This module is the single place where the standard's tables are written down; the generator,
the ingestion, the contracts (rules) and the staging schema all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

# DuckDB types used for the typed (staging) form of each column.
VARCHAR, DATE, TIMESTAMPTZ, BIGINT, INTEGER, BOOLEAN = (
    "VARCHAR", "DATE", "TIMESTAMPTZ", "BIGINT", "INTEGER", "BOOLEAN",
)

INSTITUTION_EVENTS = (
    "registered", "updated", "renamed", "legal_rep_changed", "relocated",
    "licence_renewed", "suspended", "closed", "revoked",
)
CATEGORIES = ("academic", "non_academic")
SUBJECTS = ("chinese", "math", "english", "science", "arts", "music", "sports", "stem", "language", "other")
ACADEMIC_SUBJECTS = ("chinese", "math", "english", "science")
MODES = ("online", "offline")
CLOSURE_REASONS = ("normal", "abnormal", "revoked")
GRADES = ("preschool",) + tuple(f"g{i}" for i in range(1, 13))
CHANNELS = ("wechat_pay", "alipay", "unionpay", "digital_rmb", "bank_transfer")
ORDER_STATUSES = ("paid", "cancelled")
REFUND_STATUSES = ("requested", "approved", "paid", "rejected")
MOVEMENT_KINDS = (
    "deposit", "release", "refund", "reserve_in", "reserve_out", "interest", "adjustment_in", "adjustment_out",
)
INFLOW_KINDS = ("deposit", "reserve_in", "interest", "adjustment_in")
OUTFLOW_KINDS = ("release", "refund", "reserve_out", "adjustment_out")
COMPLAINT_CATEGORIES = (
    "refund_difficulty", "closure_or_absconding", "false_advertising", "teaching_quality",
    "safety", "overcharging", "other",
)
COMPLAINT_STATUSES = ("open", "responded", "resolved", "rejected")

# Regulatory cap on one order (valid rows, used as evidence by the indicators).
ORDER_CAP_CLASS_HOURS = 60
ORDER_CAP_MONTHS = 3


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Feed:
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    is_bank: bool = False
    amount_column: str | None = None  # the money column a manifest's amount_fen_total sums

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


C = Column

FEEDS: dict[str, Feed] = {
    f.name: f
    for f in (
        Feed(
            "institutions",
            key=("institution_id", "record_date", "event"),
            columns=(
                C("institution_id", VARCHAR), C("record_date", DATE), C("event", VARCHAR, INSTITUTION_EVENTS),
                C("name", VARCHAR), C("province_code", VARCHAR), C("county_code", VARCHAR),
                C("category", VARCHAR, CATEGORIES), C("subject", VARCHAR, SUBJECTS), C("mode", VARCHAR, MODES),
                C("licence_no", VARCHAR), C("licence_expiry", DATE), C("site_lease_expiry", DATE),
                C("fire_safety_ok", BOOLEAN), C("staff_count", INTEGER), C("staff_verified", INTEGER),
                C("supervision_bank", VARCHAR), C("supervision_account", VARCHAR),
                C("reserve_required_fen", BIGINT), C("closure_reason", VARCHAR, CLOSURE_REASONS),
            ),
        ),
        Feed(
            "orders",
            key=("order_id",),
            amount_column="paid_fen",
            columns=(
                C("order_id", VARCHAR), C("institution_id", VARCHAR), C("course_id", VARCHAR),
                C("parent_phone", VARCHAR), C("student_grade", VARCHAR, GRADES),
                C("list_price_fen", BIGINT), C("paid_fen", BIGINT), C("class_hours", INTEGER),
                C("course_start", DATE), C("course_end", DATE), C("paid_at", TIMESTAMPTZ),
                C("channel", VARCHAR, CHANNELS), C("status", VARCHAR, ORDER_STATUSES),
            ),
        ),
        Feed(
            "consumptions",
            key=("consumption_id",),
            columns=(
                C("consumption_id", VARCHAR), C("order_id", VARCHAR), C("institution_id", VARCHAR),
                C("consumed_at", TIMESTAMPTZ), C("class_hours", INTEGER),
            ),
        ),
        Feed(
            "refunds",
            key=("refund_id",),
            amount_column="requested_fen",
            columns=(
                C("refund_id", VARCHAR), C("order_id", VARCHAR), C("institution_id", VARCHAR),
                C("requested_at", TIMESTAMPTZ), C("requested_fen", BIGINT), C("status", VARCHAR, REFUND_STATUSES),
                C("decided_at", TIMESTAMPTZ), C("paid_at", TIMESTAMPTZ),
            ),
        ),
        Feed(
            "account_movements",
            key=("bank_code", "movement_id"),
            is_bank=True,
            amount_column="amount_fen",
            columns=(
                C("movement_id", VARCHAR), C("bank_code", VARCHAR), C("account_id", VARCHAR),
                C("institution_id", VARCHAR), C("booked_at", TIMESTAMPTZ), C("kind", VARCHAR, MOVEMENT_KINDS),
                C("amount_fen", BIGINT), C("order_id", VARCHAR), C("balance_after_fen", BIGINT),
            ),
        ),
        Feed(
            "complaints",
            key=("complaint_id",),
            columns=(
                C("complaint_id", VARCHAR), C("institution_id", VARCHAR), C("order_id", VARCHAR),
                C("received_at", TIMESTAMPTZ), C("category", VARCHAR, COMPLAINT_CATEGORIES), C("text", VARCHAR),
                C("parent_phone", VARCHAR), C("status", VARCHAR, COMPLAINT_STATUSES),
                C("responded_at", TIMESTAMPTZ), C("resolved_at", TIMESTAMPTZ),
            ),
        ),
        Feed(
            "evaluations",
            key=("evaluation_id",),
            columns=(
                C("evaluation_id", VARCHAR), C("order_id", VARCHAR), C("institution_id", VARCHAR),
                C("rated_at", TIMESTAMPTZ), C("stars", INTEGER),
            ),
        ),
    )
}

FEED_NAMES = tuple(FEEDS)

# File names: <feed>_<YYYYMMDD>[_<seq>].<csv|parquet>, optional <file>.manifest.json beside it.
FILE_NAME_PATTERN = r"^(?P<feed>[a-z_]+)_(?P<date>\d{8})(?:_(?P<seq>\d+))?\.(?P<ext>csv|parquet)$"
MANIFEST_SUFFIX = ".manifest.json"

REPORTING_TZ = "Asia/Shanghai"

# Columns of personal data and what the staging layer keeps instead of them.
PII_PHONE_COLUMN = "parent_phone"
PII_PSEUDONYM_COLUMN = "parent_pseudonym"
MASKED_TEXT_COLUMNS = {"complaints": ("text",)}

# Bookkeeping columns every staging row carries (lineage to the delivered file).
LINEAGE_COLUMNS = (
    C("_file", VARCHAR),            # delivered file name
    C("_row", BIGINT),              # 1-based data row number in that file
    C("_delivery_date", DATE),      # the date in the file name
    C("_loaded_at", TIMESTAMPTZ),   # when this version was loaded
)


def staging_columns(feed: Feed) -> tuple[Column, ...]:
    """Typed columns of `staging.<feed>`: the feed's columns, phone replaced by its pseudonym, plus lineage."""
    cols = tuple(C(PII_PSEUDONYM_COLUMN, VARCHAR) if c.name == PII_PHONE_COLUMN else c for c in feed.columns)
    return cols + LINEAGE_COLUMNS
