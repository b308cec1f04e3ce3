"""Every contract rule of the interchange standard, written once.

A rule has a name (`<feed>.<what>`), a Chinese and an English description, and a *form*: a small
structured statement (a column must parse, be in a set, compare to another column, ...). From the form
two things are derived: the DuckDB predicate that routes breaking rows to `quarantine.rows`
(`Rule.violation_sql`) and the great-expectations expectation of the feed's suite
(`data_contracts.expectations`). Both are evaluated over the same *batch relation*: one row per
delivered row with, per feed column `c`, the raw text `_raw_c` and the typed value `c`, the lineage
(`_file`, `_row`, `_delivery_date`, `_delivery_end`) and the lookup columns the forms declare.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from data_contracts.feeds import (
    BIGINT, BOOLEAN, DATE, FEEDS, INTEGER, PII_PHONE_COLUMN, TIMESTAMPTZ, Feed,
)
from data_contracts.regions import PROVINCE_CODES

# Text forms accepted for each typed column; anything else is quarantined, never coerced
# (DuckDB would round '12.5' to 13 when cast to BIGINT).
TYPE_PATTERNS = {
    BIGINT: r"-?[0-9]+",
    INTEGER: r"-?[0-9]+",
    DATE: r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    TIMESTAMPTZ: r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)",
    BOOLEAN: r"true|false|TRUE|FALSE|True|False|1|0",
}
TYPE_WORDS = {
    BIGINT: ("整数", "an integer"), INTEGER: ("整数", "an integer"), DATE: ("日期 YYYY-MM-DD", "a date YYYY-MM-DD"),
    TIMESTAMPTZ: ("带时区偏移的时间戳", "a timestamp with UTC offset"), BOOLEAN: ("布尔值", "a boolean"),
}
PHONE_OK_COLUMN = "parent_phone_ok"  # set at read time from the raw number, which never reaches DuckDB
# `_delivery_end` of the batch relation: the first instant after the delivery day (session time zone)
DELIVERY_END_SQL = "CAST(CAST(_delivery_date + 1 AS TIMESTAMP) AS TIMESTAMPTZ)"


def q(column: str) -> str:
    return f'"{column}"'


def raw(column: str) -> str:
    return f"_raw_{column}"


def sql_list(values) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


# --- forms -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """A checkable statement; `violation` is a DuckDB predicate true for breaking rows."""

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns shown in the quarantine detail."""
        raise NotImplementedError

    def violation(self) -> str:
        raise NotImplementedError

    def lookups(self) -> dict[str, str]:
        """Extra columns of the batch relation this form needs: name -> SQL (may use {batch})."""
        return {}


@dataclass(frozen=True)
class Parses(Form):
    """The raw text matches the type's pattern and casts; empty stays null."""

    column: str
    pattern: str

    @property
    def columns(self):
        return (raw(self.column),)

    def violation(self):
        return (f"{q(raw(self.column))} IS NOT NULL AND NOT (regexp_full_match({q(raw(self.column))}, "
                f"'{self.pattern}') AND {q(self.column)} IS NOT NULL)")


@dataclass(frozen=True)
class Required(Form):
    column: str
    raw_text: bool = True  # check the raw text (typed columns) or the column itself

    @property
    def target(self) -> str:
        return raw(self.column) if self.raw_text else self.column

    @property
    def columns(self):
        return (self.target,)

    def violation(self):
        return f"{q(self.target)} IS NULL"


@dataclass(frozen=True)
class OneOf(Form):
    column: str
    values: tuple[str, ...]

    @property
    def columns(self):
        return (self.column,)

    def violation(self):
        return f"{q(self.column)} IS NOT NULL AND {q(self.column)} NOT IN ({sql_list(self.values)})"


@dataclass(frozen=True)
class Between(Form):
    column: str
    min_value: int | None = None
    max_value: int | None = None

    @property
    def columns(self):
        return (self.column,)

    def violation(self):
        parts = []
        if self.min_value is not None:
            parts.append(f"{q(self.column)} < {self.min_value}")
        if self.max_value is not None:
            parts.append(f"{q(self.column)} > {self.max_value}")
        return " OR ".join(parts)


@dataclass(frozen=True)
class Compare(Form):
    """`left op right` must hold where both are known (op is <=, < or =)."""

    left: str
    op: str
    right: str
    extra_lookups: tuple[tuple[str, str], ...] = ()

    @property
    def columns(self):
        return (self.left, self.right)

    def violation(self):
        return f"NOT coalesce({q(self.left)} {self.op} {q(self.right)}, true)"

    def lookups(self):
        return dict(self.extra_lookups)


@dataclass(frozen=True)
class Conditional(Form):
    """`column` must be null (or must be set) on rows where `when` is (or is not) in `values`.

    A null `when` counts as "not in values", as great-expectations' row condition treats it.
    """

    column: str
    must_be_null: bool
    when: str
    values: tuple[str, ...]
    when_in: bool  # condition is `when IN values` (True) or `when NOT IN values` (False)

    @property
    def columns(self):
        return (self.column, self.when)

    def violation(self):
        state = "IS NOT NULL" if self.must_be_null else "IS NULL"
        cond = f"coalesce({q(self.when)} IN ({sql_list(self.values)}), false)"
        return f"{q(self.column)} {state} AND {'' if self.when_in else 'NOT '}{cond}"


@dataclass(frozen=True)
class IsTrue(Form):
    """A flag computed at read time from data DuckDB must never see (the raw phone number)."""

    column: str

    @property
    def columns(self):
        return (self.column,)

    def violation(self):
        return f"{q(self.column)} IS FALSE"


@dataclass(frozen=True)
class StartsWith(Form):
    column: str
    prefix_column: str

    @property
    def columns(self):
        return (self.column, self.prefix_column)

    def violation(self):
        return f"NOT coalesce(starts_with({q(self.column)}, {q(self.prefix_column)}), true)"


@dataclass(frozen=True)
class Uscc(Form):
    """GB 32100-2015 check character (see data_contracts.identifiers)."""

    column: str

    @property
    def columns(self):
        return (self.column,)

    def violation(self):
        return f"{q(self.column)} IS NOT NULL AND NOT tw_uscc_ok({q(self.column)})"


@dataclass(frozen=True)
class UniqueInFile(Form):
    key: tuple[str, ...]

    @property
    def count_column(self) -> str:
        return "_key_count"

    @property
    def columns(self):
        return self.key

    def violation(self):
        return f"{q(self.count_column)} > 1"

    def lookups(self):
        return {self.count_column: f"count(*) OVER (PARTITION BY _file, {', '.join(map(q, self.key))})"}


@dataclass(frozen=True)
class Exists(Form):
    """Referential: `column` names a row of `staging.<target_feed>` (retried on later runs)."""

    column: str
    target_feed: str
    target_column: str

    @property
    def found_column(self) -> str:
        return f"_known_{self.column}"

    @property
    def columns(self):
        return (self.column,)

    def violation(self):
        return f"{q(self.column)} IS NOT NULL AND NOT {q(self.found_column)}"

    def lookups(self):
        return {self.found_column: (
            f"EXISTS (SELECT 1 FROM {batch_targets(self.target_feed, self.target_column, self.column)} AS t "
            f"WHERE t.{q(self.target_column)} = b.{q(self.column)})")}


def batch_targets(target_feed: str, target_key: str, via: str) -> str:
    """The rows of `staging.<target_feed>` that the batch's `via` values name (a key column, text in the batch
    as in staging). A lookup over them instead of the whole table: DuckDB hashed every target row for a
    correlated lookup, where this semi join hashes the batch's keys (3× faster on a 40M-row target)."""
    return (f"(SELECT * FROM staging.{target_feed} AS t SEMI JOIN (SELECT DISTINCT {q(via)} AS k FROM {{batch}}) "
            f"AS k ON t.{q(target_key)} = k.k)")


# Hours consumed on the row's order up to and including the row (by consumed_at, then consumption_id):
# every other consumption in staging plus the batch's latest version of each consumption, so overlapping
# deliveries of the same consumption count once. Text that is not an integer counts as nothing.
CONSUMED_HOURS_SQL = """(
    SELECT coalesce(sum(c.class_hours), 0)
    FROM (
        SELECT order_id, consumption_id, consumed_at, class_hours
        FROM staging.consumptions AS s
        SEMI JOIN (SELECT DISTINCT order_id FROM {batch}) AS o ON s.order_id = o.order_id  -- the batch's orders only
        WHERE consumption_id NOT IN (SELECT consumption_id FROM {batch} WHERE consumption_id IS NOT NULL)
        UNION ALL
        SELECT order_id, consumption_id, try_cast(consumed_at AS TIMESTAMPTZ),
            CASE WHEN regexp_full_match(class_hours, '-?[0-9]+') THEN CAST(class_hours AS INTEGER) END
        FROM {batch}
        QUALIFY row_number() OVER (
            PARTITION BY consumption_id ORDER BY _delivery_date DESC, _seq DESC, _file DESC, _row DESC) = 1
    ) AS c
    WHERE c.order_id = b.order_id
      AND (c.consumed_at < b.consumed_at OR (c.consumed_at = b.consumed_at AND c.consumption_id <= b.consumption_id))
)"""


def reference_lookup(name: str, target_feed: str, target_key: str, via: str, target_column: str) -> tuple[str, str]:
    """A lookup column: the target row's column, found by key (null when the target is unknown)."""
    return name, (f"(SELECT t.{q(target_column)} FROM {batch_targets(target_feed, target_key, via)} AS t "
                  f"WHERE t.{q(target_key)} = b.{q(via)})")


# --- rules -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    zh: str
    en: str
    form: Form
    referential: bool = False  # retried on later runs, released when it becomes valid

    @property
    def feed(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def violation_sql(self) -> str:
        return self.form.violation()


@dataclass
class _RuleBook:
    rules: list[Rule] = field(default_factory=list)

    def add(self, name: str, zh: str, en: str, form: Form, referential: bool = False) -> None:
        self.rules.append(Rule(name, zh, en, form, referential))


# Columns that must be present (besides the key); the rest may be empty.
REQUIRED = {
    "institutions": ("name", "province_code", "county_code", "category", "subject", "mode", "staff_count",
                     "staff_verified", "supervision_bank", "supervision_account", "reserve_required_fen"),
    "orders": ("institution_id", "course_id", PII_PHONE_COLUMN, "student_grade", "list_price_fen", "paid_fen",
               "class_hours", "course_start", "course_end", "paid_at", "channel", "status"),
    "consumptions": ("order_id", "institution_id", "consumed_at", "class_hours"),
    "refunds": ("order_id", "institution_id", "requested_at", "requested_fen", "status"),
    "account_movements": ("account_id", "institution_id", "booked_at", "kind", "amount_fen", "balance_after_fen"),
    "complaints": ("institution_id", "received_at", "category", "status"),
    "evaluations": ("order_id", "institution_id", "rated_at", "stars"),
}


def _column_rules(book: _RuleBook, feed: Feed) -> None:
    """Rules every column gets from its type, enumeration and presence."""
    for col in feed.columns:
        if col.name == PII_PHONE_COLUMN:
            book.add(f"{feed.name}.parent_phone.required", "家长手机号缺失", "parent phone is missing",
                     Required("parent_pseudonym", raw_text=False))
            book.add(f"{feed.name}.parent_phone.format", "家长手机号不是11位大陆手机号",
                     "parent phone is not an 11-digit mainland mobile number", IsTrue(PHONE_OK_COLUMN))
            continue
        if col.name in feed.key or col.name in REQUIRED[feed.name]:
            book.add(f"{feed.name}.{col.name}.required", f"{col.name} 不能为空", f"{col.name} must not be empty",
                     Required(col.name))
        if col.type in TYPE_PATTERNS:
            zh, en = TYPE_WORDS[col.type]
            book.add(f"{feed.name}.{col.name}.format", f"{col.name} 应为{zh}", f"{col.name} must be {en}",
                     Parses(col.name, TYPE_PATTERNS[col.type]))
        if col.name == "institution_id":
            book.add(f"{feed.name}.institution_id.uscc_check", "统一社会信用代码校验位错误",
                     "unified social credit code has a wrong check character", Uscc(col.name))
        if col.enum:
            book.add(f"{feed.name}.{col.name}.enum", f"{col.name} 取值不在标准枚举中",
                     f"{col.name} is not one of the standard's values", OneOf(col.name, col.enum))
    book.add(f"{feed.name}.key_unique_in_file", "同一文件内主键重复", "the key occurs more than once in one file",
             UniqueInFile(feed.key))


def _order_references(book: _RuleBook, feed: str) -> None:
    """consumptions, refunds, evaluations: a known order, and (where stated) the order's institution."""
    book.add(f"{feed}.order_known", "订单不存在", "unknown order", Exists("order_id", "orders", "order_id"),
             referential=True)


def _build() -> list[Rule]:
    book = _RuleBook()
    for feed in FEEDS.values():
        _column_rules(book, feed)
    a = book.add
    # institutions
    a("institutions.record_date_not_after_delivery", "备案日期晚于交付日期", "record date is after the delivery date",
      Compare("record_date", "<=", "_delivery_date"))
    a("institutions.province_code.known", "省级行政区划代码未知", "unknown province code",
      OneOf("province_code", PROVINCE_CODES))
    a("institutions.county_code.format", "县级代码应为6位数字", "county code must be six digits",
      Parses("county_code", "[0-9]{6}"))
    a("institutions.county_in_province", "县级代码不属于该省", "county code does not begin with the province code",
      StartsWith("county_code", "province_code"))
    a("institutions.licence_required_offline", "线下机构缺少办学许可证号", "offline institution without licence number",
      Conditional("licence_no", must_be_null=False, when="mode", values=("online",), when_in=False))
    a("institutions.site_lease_null_online", "线上机构不应填写场地租约到期日", "online institution with a site lease date",
      Conditional("site_lease_expiry", must_be_null=True, when="mode", values=("online",), when_in=True))
    a("institutions.fire_safety_null_online", "线上机构不应填写消防验收", "online institution with a fire-safety flag",
      Conditional("fire_safety_ok", must_be_null=True, when="mode", values=("online",), when_in=True))
    a("institutions.staff_count.non_negative", "员工人数为负", "staff count is negative", Between("staff_count", 0))
    a("institutions.staff_verified.non_negative", "已核查员工人数为负", "verified staff is negative",
      Between("staff_verified", 0))
    a("institutions.staff_verified_le_staff_count", "已核查员工人数超过员工总数", "more verified staff than staff",
      Compare("staff_verified", "<=", "staff_count"))
    a("institutions.reserve_required_fen.non_negative", "风险保证金要求为负", "required reserve is negative",
      Between("reserve_required_fen", 0))
    a("institutions.closure_reason_only_when_closed", "非注销/吊销记录填写了关停原因",
      "closure reason on a record that is neither closed nor revoked",
      Conditional("closure_reason", must_be_null=True, when="event", values=("closed", "revoked"), when_in=False))
    # orders
    a("orders.institution_filed", "机构未备案", "the institution has no filing record",
      Exists("institution_id", "institutions", "institution_id"), referential=True)
    a("orders.list_price_fen.positive", "标价必须大于0", "list price must be > 0", Between("list_price_fen", 1))
    a("orders.paid_fen.positive", "实付金额必须大于0", "paid amount must be > 0", Between("paid_fen", 1))
    a("orders.paid_le_list_price", "实付金额高于标价", "paid amount exceeds the list price",
      Compare("paid_fen", "<=", "list_price_fen"))
    a("orders.class_hours.positive", "课时数必须大于0", "class hours must be > 0", Between("class_hours", 1))
    a("orders.course_end_not_before_start", "课程结束日期早于开始日期", "course ends before it starts",
      Compare("course_start", "<=", "course_end"))
    a("orders.paid_at_not_after_delivery", "支付时间晚于交付日期", "paid after the delivery date",
      Compare("paid_at", "<", "_delivery_end"))
    # consumptions
    _order_references(book, "consumptions")
    a("consumptions.institution_is_orders", "机构与订单所属机构不一致", "institution differs from the order's",
      Compare("institution_id", "=", "_order_institution_id",
              (reference_lookup("_order_institution_id", "orders", "order_id", "order_id", "institution_id"),)),
      referential=True)
    a("consumptions.class_hours.positive", "消课课时必须大于0", "consumed hours must be > 0", Between("class_hours", 1))
    a("consumptions.hours_within_order", "累计消课课时超过订单课时", "cumulative consumed hours exceed the order's hours",
      Compare("_order_hours_consumed", "<=", "_order_class_hours", (
          reference_lookup("_order_class_hours", "orders", "order_id", "order_id", "class_hours"),
          ("_order_hours_consumed", CONSUMED_HOURS_SQL),
      )), referential=True)
    # refunds
    _order_references(book, "refunds")
    a("refunds.institution_is_orders", "机构与订单所属机构不一致", "institution differs from the order's",
      Compare("institution_id", "=", "_order_institution_id",
              (reference_lookup("_order_institution_id", "orders", "order_id", "order_id", "institution_id"),)),
      referential=True)
    a("refunds.requested_fen.positive", "申请退款金额必须大于0", "requested amount must be > 0",
      Between("requested_fen", 1))
    a("refunds.decided_at_null_while_requested", "仍在申请中的退款不应有决定时间",
      "a refund still requested has a decision time",
      Conditional("decided_at", must_be_null=True, when="status", values=("requested",), when_in=True))
    a("refunds.paid_at_only_when_paid", "未支付的退款不应有支付时间", "paid time on a refund that is not paid",
      Conditional("paid_at", must_be_null=True, when="status", values=("paid",), when_in=False))
    # account movements
    a("account_movements.amount_fen.positive", "流水金额必须大于0", "movement amount must be > 0",
      Between("amount_fen", 1))
    a("account_movements.balance_after_fen.non_negative", "监管账户余额为负", "supervision account balance is negative",
      Between("balance_after_fen", 0))
    a("account_movements.order_id_for_deposit_refund", "缴费/退费流水缺少订单号", "deposit or refund without order",
      Conditional("order_id", must_be_null=False, when="kind", values=("deposit", "refund"), when_in=True))
    a("account_movements.order_id_only_deposit_refund", "非缴费/退费流水不应有订单号",
      "order id on a movement that is neither deposit nor refund",
      Conditional("order_id", must_be_null=True, when="kind", values=("deposit", "refund"), when_in=False))
    # evaluations
    _order_references(book, "evaluations")
    a("evaluations.stars.range", "评价星级应为1至5", "stars must be 1 to 5", Between("stars", 1, 5))
    return book.rules


RULES: tuple[Rule, ...] = tuple(_build())
RULES_BY_NAME = {r.name: r for r in RULES}
assert len(RULES_BY_NAME) == len(RULES), "rule names must be unique"


def rules_for(feed: str) -> tuple[Rule, ...]:
    return tuple(r for r in RULES if r.feed == feed)


def lookups_for(feed: str) -> dict[str, str]:
    """All lookup columns the feed's rules need in the batch relation."""
    out: dict[str, str] = {}
    for rule in rules_for(feed):
        out.update(rule.form.lookups())
    return out
