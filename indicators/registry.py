"""The indicator registry: one entry per weekly per-institution indicator.

Everything else (the mart's columns, the rules' thresholds, the reasons officials read, the docs) is
derived from this list, so an indicator is defined in exactly one place. From its `name` a reader finds
the SQL (`indicators/sql/<name>.sql`), the test (`tests/indicators/test_indicators.py::test_<name>`) and
the row in `docs/indicators.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SQL_DIR = HERE / "sql"
THRESHOLDS_FILE = HERE / "thresholds.yaml"
DOC_PATH = "docs/indicators.md"

HIGHER, LOWER = "higher_is_riskier", "lower_is_riskier"
TIERS = ("red", "orange", "yellow")  # most severe first
# Points multipliers of the transparent rule score (indicators/rules.py). Signs that parents' prepaid money
# is leaving, missing or being pulled back now outrank operational and filing findings: an expired lease or a
# seasonal sales spike is common among sound institutions, money released ahead of classes is not.
MONEY_AT_RISK, CONTEXT = 3.0, 0.5

# Legal bases, cited by several indicators.
PREPAID_NOTICE = "《关于加强校外培训机构预收费监管工作的通知》(教监管厅函〔2021〕6号)"
PENALTY_RULES = "《校外培训行政处罚暂行办法》(2023)"
DOUBLE_REDUCTION = "《关于进一步减轻义务教育阶段学生作业负担和校外培训负担的意见》(2021)"
PRIVATE_EDU_REGS = "《中华人民共和国民办教育促进法实施条例》(2021)"
STAFF_RULES = "《校外培训机构从业人员管理办法(试行)》(2021)"
PREPAID_LOCAL = "地方《预付式消费管理》规定(单用途预付卡/预收费资金监管)"
CONSUMER_LAW = "《中华人民共和国消费者权益保护法》"


@dataclass(frozen=True)
class Thresholds:
    """Tier cut-offs; a value strictly beyond a cut-off (in the risky direction) earns that tier."""

    yellow: float | None = None
    orange: float | None = None
    red: float | None = None

    def tier(self, value: float | None, direction: str) -> str | None:
        """The most severe tier whose cut-off `value` passes, or None (NULL values are never flagged)."""
        if value is None or value != value:  # None or NaN
            return None
        for name in TIERS:
            cut = getattr(self, name)
            if cut is not None and (value > cut if direction == HIGHER else value < cut):
                return name
        return None

    def threshold(self, tier: str) -> float | None:
        return getattr(self, tier)


@dataclass(frozen=True)
class Indicator:
    name: str
    name_zh: str
    formula: str
    unit: str
    direction: str
    thresholds: Thresholds
    legal_basis: tuple[str, ...]
    reason_zh: str  # formatted with value= and threshold=
    reason_en: str
    rule_weight: float = CONTEXT  # multiplies a flag's tier points in the rule score

    @property
    def sql(self) -> str:
        """The SQL file that computes it, relative to the repository root."""
        return f"indicators/sql/{self.name}.sql"

    @property
    def sql_path(self) -> Path:
        return SQL_DIR / f"{self.name}.sql"

    @property
    def test(self) -> str:
        """The pytest node id of the test that checks it on hand-made rows."""
        return f"tests/indicators/test_indicators.py::test_{self.name}"

    def tier(self, value: float | None, thresholds: Thresholds | None = None) -> str | None:
        return (thresholds or self.thresholds).tier(value, self.direction)

    def reasons(self, value: float, threshold: float) -> tuple[str, str]:
        """The (Chinese, English) reason for a flag on this indicator."""
        return self.reason_zh.format(value=value, threshold=threshold), self.reason_en.format(
            value=value, threshold=threshold
        )


T = Thresholds
I = Indicator
YUAN = 100  # fen per yuan, for readable money thresholds

INDICATORS: tuple[Indicator, ...] = (
    # --- prepaid money and the supervision account ---
    I("prepaid_liability_fen", "预收费未消课余额",
      "Cumulative paid_fen of non-cancelled orders paid by week end, minus the value of classes consumed "
      "(paid_fen × hours / order.class_hours) and refunds paid by week end; per order the consumed plus "
      "refunded value is capped at paid_fen, so a refund larger than the remaining value brings the order "
      "to 0, never below.",
      "fen", HIGHER, T(), (PREPAID_NOTICE,),
      "预收费未消课余额 {value:,.0f} 分", "prepaid liability {value:,.0f} fen"),
    I("supervised_balance_fen", "监管账户余额",
      "Sum over the institution's supervision accounts of the balance_after_fen of the latest movement "
      "booked by week end (ordered by booked_at, movement_id); 0 when no movement yet.",
      "fen", LOWER, T(), (PREPAID_NOTICE, PREPAID_LOCAL),
      "监管账户余额 {value:,.0f} 分", "supervised balance {value:,.0f} fen"),
    I("coverage_ratio", "监管资金覆盖率",
      "supervised_balance_fen / prepaid_liability_fen; NULL when the liability is 0 (nothing to cover), "
      "so an institution without prepaid liability is never flagged on it.",
      "ratio", LOWER, T(0.9, 0.7, 0.5), (PREPAID_NOTICE, PREPAID_LOCAL),
      "资金覆盖率 {value:.2f} 低于阈值 {threshold}", "coverage ratio {value:.2f} below {threshold}",
      rule_weight=MONEY_AT_RISK),
    I("release_beyond_consumed_fen", "超消课进度划拨金额",
      "Cumulative `release` movements booked by week end minus cumulative consumed value by week end; "
      "> 0 means money left the supervision account before the classes were taught.",
      "fen", HIGHER, T(0, 50_000 * YUAN, 200_000 * YUAN), (PREPAID_NOTICE,),
      "监管资金超消课进度划拨 {value:,.0f} 分(阈值 {threshold:,.0f})",
      "released {value:,.0f} fen beyond consumed classes (threshold {threshold:,.0f})",
      rule_weight=MONEY_AT_RISK),
    I("reserve_shortfall_fen", "风险保证金缺口",
      "reserve_required_fen of the filing at week end minus the reserve held (cumulative reserve_in − "
      "reserve_out booked by week end); negative = surplus.",
      "fen", HIGHER, T(0, 100_000 * YUAN, 500_000 * YUAN), (PREPAID_NOTICE, PREPAID_LOCAL),
      "风险保证金缺口 {value:,.0f} 分(阈值 {threshold:,.0f})",
      "risk reserve short by {value:,.0f} fen (threshold {threshold:,.0f})"),
    I("adjustment_out_fen_4w", "近4周调整转出金额",
      "Sum of `adjustment_out` movements booked in the 4 weeks ending at week end.",
      "fen", HIGHER, T(0, 10_000 * YUAN, 100_000 * YUAN), (PREPAID_NOTICE,),
      "近4周监管账户调整转出 {value:,.0f} 分(阈值 {threshold:,.0f})",
      "adjustment transfers out of the account {value:,.0f} fen in 4 weeks (threshold {threshold:,.0f})",
      rule_weight=MONEY_AT_RISK),
    I("bank_continuity_breaks_4w", "近4周银行流水断点数",
      "Number of rows of staging.bank_continuity_breaks whose `week` is one of the 4 weeks ending at this "
      "week (a missing or altered movement on the supervision account).",
      "count", HIGHER, T(0, 1, 3), (PREPAID_NOTICE,),
      "近4周监管账户流水断点 {value:.0f} 处", "{value:.0f} bank statement continuity breaks in 4 weeks",
      rule_weight=MONEY_AT_RISK),
    I("bank_feed_silence_weeks", "银行流水中断周数",
      "Whole weeks since the last week with an account movement booked by week end (0 = movements this "
      "week); with no movement ever, weeks since the filing's registration week.",
      "weeks", HIGHER, T(2, 4, 8), (PREPAID_NOTICE,),
      "监管银行流水已 {value:.0f} 周未报送", "no bank movements for {value:.0f} weeks"),
    # --- sales and delivery ---
    I("sales_spike_ratio", "周销售额突增倍数",
      "paid_fen of non-cancelled orders paid this week / median of the weekly paid_fen of the 8 previous "
      "weeks (weeks without sales count as 0); NULL when that median is 0.",
      "ratio", HIGHER, T(2, 3, 5), (PREPAID_NOTICE, DOUBLE_REDUCTION),
      "本周预收费为前8周中位数的 {value:.1f} 倍(阈值 {threshold})",
      "weekly sales {value:.1f}× the 8-week median (threshold {threshold})"),
    I("discount_depth", "折扣深度",
      "1 − Σ paid_fen / Σ list_price_fen over non-cancelled orders paid in the 4 weeks ending at week end "
      "(value-weighted); NULL without orders.",
      "share", HIGHER, T(0.3, 0.4, 0.5), (PREPAID_NOTICE, PENALTY_RULES),
      "近4周平均折扣深度 {value:.0%}(阈值 {threshold:.0%})",
      "4-week discount depth {value:.0%} (threshold {threshold:.0%})",
      rule_weight=MONEY_AT_RISK),
    I("over_cap_orders_4w", "近4周超限收费订单数",
      "Non-cancelled orders paid in the 4 weeks ending at week end with class_hours > 60 or course_end "
      "later than course_start + 3 months.",
      "count", HIGHER, T(0, 5, 20), (PREPAID_NOTICE, DOUBLE_REDUCTION, PENALTY_RULES),
      "近4周超过60课时或3个月的预收费订单 {value:.0f} 笔",
      "{value:.0f} orders over 60 class hours or 3 months in 4 weeks"),
    I("consumption_drop", "消课量下降幅度",
      "1 − class hours consumed this week / mean weekly class hours of the 4 previous weeks; NULL when "
      "that mean is 0 (negative = growth).",
      "share", HIGHER, T(0.5, 0.7, 0.9), (PREPAID_NOTICE,),
      "本周消课量较前4周均值下降 {value:.0%}(阈值 {threshold:.0%})",
      "class consumption down {value:.0%} on the 4-week mean (threshold {threshold:.0%})"),
    I("sell_deliver_ratio", "售课消课比",
      "paid_fen of non-cancelled orders paid in the 4 weeks ending at week end / consumed value in the same "
      "4 weeks; NULL when both are 0, capped at 100 (also when nothing was consumed but something sold).",
      "ratio", HIGHER, T(2, 3, 5), (PREPAID_NOTICE,),
      "近4周售课金额为消课金额的 {value:.1f} 倍(阈值 {threshold})",
      "4-week sales {value:.1f}× the value delivered (threshold {threshold})"),
    I("liability_runway_weeks", "未消课余额可消化周数",
      "prepaid_liability_fen / (consumed value in the 4 weeks ending at week end / 4); NULL when the "
      "liability is 0, capped at 520 (also when nothing was consumed in the 4 weeks).",
      "weeks", HIGHER, T(26, 52, 104), (PREPAID_NOTICE, DOUBLE_REDUCTION),
      "按当前消课速度未消课余额需 {value:.0f} 周消化(阈值 {threshold})",
      "prepaid liability needs {value:.0f} weeks at the current delivery rate (threshold {threshold})"),
    I("orders_feed_silence_weeks", "订单消课数据中断周数",
      "Whole weeks since the last week with an order paid or a class consumed by week end (0 = rows this "
      "week); with no row ever, weeks since the filing's registration week.",
      "weeks", HIGHER, T(2, 4, 8), (PREPAID_NOTICE, PREPAID_LOCAL),
      "订单/消课数据已 {value:.0f} 周未报送", "no orders or class consumptions for {value:.0f} weeks"),
    # --- refunds ---
    I("refund_request_surge", "退费申请激增倍数",
      "Refund requests received this week / max(1, mean weekly requests of the 8 previous weeks).",
      "ratio", HIGHER, T(3, 5, 10), (PREPAID_NOTICE, CONSUMER_LAW),
      "本周退费申请为前8周均值的 {value:.1f} 倍(阈值 {threshold})",
      "refund requests {value:.1f}× the 8-week mean (threshold {threshold})",
      rule_weight=MONEY_AT_RISK),
    I("overdue_refunds", "逾期未退费申请数",
      "Refund requests made by week end, neither paid (paid_at) nor rejected (decided_at) by week end, and "
      "more than 5 working days old at week end (working days = Mon–Fri after the request date; public "
      "holidays are ignored).",
      "count", HIGHER, T(0, 3, 10), (PREPAID_NOTICE, PENALTY_RULES, CONSUMER_LAW),
      "超过5个工作日未退费的申请 {value:.0f} 笔", "{value:.0f} refund requests unpaid after 5 working days",
      rule_weight=MONEY_AT_RISK),
    I("median_refund_days", "退费办理天数中位数",
      "Median of (paid_at − requested_at) in days over refunds paid in the 4 weeks ending at week end; "
      "NULL without such refunds.",
      "days", HIGHER, T(7, 14, 30), (PREPAID_NOTICE, CONSUMER_LAW),
      "近4周退费办理天数中位数 {value:.1f} 天(阈值 {threshold})",
      "median refund took {value:.1f} days in 4 weeks (threshold {threshold})"),
    # --- complaints and evaluations ---
    I("complaint_surge", "投诉激增倍数",
      "Complaints received this week / max(1, mean weekly complaints of the 8 previous weeks).",
      "ratio", HIGHER, T(3, 5, 10), (CONSUMER_LAW, PENALTY_RULES),
      "本周投诉为前8周均值的 {value:.1f} 倍(阈值 {threshold})",
      "complaints {value:.1f}× the 8-week mean (threshold {threshold})"),
    I("closure_keyword_complaints", "停课跑路类投诉数",
      "Complaints received in the 4 weeks ending at week end with category closure_or_absconding or text "
      "containing 跑路, 关门, 停课, 联系不上, 退费难, 人去楼空, 卷款 or 倒闭.",
      "count", HIGHER, T(0, 2, 5), (PREPAID_NOTICE, CONSUMER_LAW),
      "近4周停课/跑路类投诉 {value:.0f} 件", "{value:.0f} complaints about closure or absconding in 4 weeks"),
    I("unresolved_complaints", "未办结投诉数",
      "Complaints received by week end and not resolved or rejected by week end (closing time: resolved_at, "
      "else responded_at, else received_at).",
      "count", HIGHER, T(3, 10, 25), (CONSUMER_LAW,),
      "未办结投诉 {value:.0f} 件(阈值 {threshold})", "{value:.0f} unresolved complaints (threshold {threshold})"),
    I("rating_drop", "评价星级下降",
      "Mean stars of the 12 weeks before the last 4 minus mean stars of the 4 weeks ending at week end; "
      "NULL when either period has no rating.",
      "stars", HIGHER, T(0.5, 1.0, 1.5), (DOUBLE_REDUCTION,),
      "近4周评价较此前下降 {value:.1f} 星(阈值 {threshold})",
      "ratings down {value:.1f} stars on the previous 12 weeks (threshold {threshold})"),
    # --- filing (licence, site, staff, governance) ---
    I("licence_days_to_expiry", "办学许可证剩余天数",
      "licence_expiry of the filing at week end − week_end in days (negative = expired); NULL without a "
      "licence expiry.",
      "days", LOWER, T(60, 30, 0), (PRIVATE_EDU_REGS, PENALTY_RULES),
      "办学许可证距到期 {value:.0f} 天(阈值 {threshold})", "licence expires in {value:.0f} days (threshold {threshold})"),
    I("lease_days_to_expiry", "场地租约剩余天数",
      "site_lease_expiry of the filing at week end − week_end in days (negative = expired); NULL for "
      "online institutions.",
      "days", LOWER, T(60, 30, 0), (PRIVATE_EDU_REGS, DOUBLE_REDUCTION),
      "培训场地租约距到期 {value:.0f} 天(阈值 {threshold})", "site lease expires in {value:.0f} days (threshold {threshold})"),
    I("staff_unverified_share", "未通过背景审查员工占比",
      "(staff_count − staff_verified) / staff_count of the filing at week end; NULL when staff_count is 0.",
      "share", HIGHER, T(0, 0.2, 0.5), (STAFF_RULES, DOUBLE_REDUCTION),
      "未通过无犯罪记录审查员工占比 {value:.0%}", "{value:.0%} of staff without a criminal-record check"),
    I("governance_changes_90d", "近90天治理变更次数",
      "Filing records with event renamed, legal_rep_changed or relocated dated in the 90 days ending at "
      "week end (week_end − 89 … week_end).",
      "count", HIGHER, T(1, 2, 3), (PRIVATE_EDU_REGS,),
      "近90天更名/变更法定代表人/迁址 {value:.0f} 次(阈值 {threshold})",
      "{value:.0f} renames, legal representative changes or relocations in 90 days (threshold {threshold})"),
)

_BY_NAME = {i.name: i for i in INDICATORS}
NAMES: tuple[str, ...] = tuple(_BY_NAME)


def by_name(name: str) -> Indicator:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown indicator {name!r}; known: {', '.join(NAMES)}") from None


@cache
def _overrides(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    provinces = data.get("provinces") or {}
    for code, entries in provinces.items():
        for name, cuts in (entries or {}).items():
            by_name(name)  # fail loudly on a misspelt indicator
            unknown = set(cuts) - set(TIERS)
            if unknown:
                raise ValueError(f"thresholds.yaml: province {code} {name}: unknown tiers {sorted(unknown)}")
    return {str(code): entries or {} for code, entries in provinces.items()}


def thresholds_for(province_code: str | None = None, path: Path = THRESHOLDS_FILE) -> dict[str, Thresholds]:
    """Thresholds per indicator for a province: the registry defaults, overridden tier by tier from the YAML."""
    overrides = _overrides(path).get(str(province_code), {}) if province_code else {}
    return {i.name: replace(i.thresholds, **overrides.get(i.name, {})) for i in INDICATORS}


def _cell(v: object) -> str:
    return "—" if v is None else str(v).replace("|", "\\|")


def markdown() -> str:
    """The text of docs/indicators.md (a test keeps the committed file equal to it)."""
    lines = [
        "# Indicators",
        "",
        "Generated from `indicators/registry.py` by `indicators.registry.markdown()`; do not edit by hand",
        "(`python -c \"from indicators.registry import markdown; print(markdown(), end='')\" > docs/indicators.md`).",
        "",
        "Table `marts.institution_week_indicators`: one row per active institution and ISO week, computed by",
        "`indicators.compute.compute_institution_week_indicators(con, weeks=None, as_of_delivery=False)`",
        "(Dagster asset `institution_week_indicators`, group `indicators`). From an indicator's name you find",
        "its SQL (`indicators/sql/<name>.sql`), its test (`tests/indicators/test_indicators.py::test_<name>`)",
        "and its row below.",
        "",
        "## Definitions common to all indicators",
        "",
        "- A week runs from Monday 00:00 to Sunday 24:00 Asia/Shanghai; every value is as of the end of the",
        "  week: rows whose event time is after the week end are not used.",
        "- Active: the first filing record is dated on or before the week end, and the latest filing record",
        "  before the week start is not `closed` or `revoked` (an institution closed during the week is still",
        "  listed that week). Filing attributes (name, codes, licence, lease, staff, reserve) are the latest",
        "  non-null value on or before the week end; a closure on the same day as another record is the later.",
        "- Weeks: from the first to the last week with a row in orders, consumptions, refunds, account",
        "  movements, complaints or evaluations. `weeks=[...]` recomputes from the whole history but replaces",
        "  only those weeks' rows (late rows: recompute the weeks they fall in, or everything).",
        "- Windows (\"4 weeks ending at week end\", \"8 previous weeks\") are row frames over a dense grid of",
        "  institutions x calendar weeks, so weeks without rows count as 0; at the start of the calendar the",
        "  frames hold fewer weeks (the medians and means are over the weeks available).",
        "- `as_of_delivery=True` gives the view known at the time (for the model's leakage tests): each row",
        "  counts from the later of its event time and its `_delivery_date`, so a late row only counts from",
        "  the week it was delivered (and a late row falls in that week's 4-week windows). With the default",
        "  (`False`) late rows count in the week they happened. Only the current version of each row is used:",
        "  a refund is judged by its `paid_at`/`decided_at` times, a complaint by its resolution times, and a",
        "  cancelled order is excluded from every week. `bank_continuity_breaks_4w` uses the break's `week`.",
        "- Money indicators are fen stored as DOUBLE; consumed value `paid_fen * hours / order.class_hours` is",
        "  valued to a millionth of a fen (DECIMAL) and summed exactly, so two runs give the same whole fen for",
        "  liability and releases.",
        "- Working days are Monday to Friday; public holidays are ignored (a request made on Monday is overdue",
        "  from Tuesday of the next week, one made on Friday from Monday two weeks later).",
        "- Thresholds: a value strictly beyond a cut-off, in the risky direction, earns that tier",
        "  (`Indicator.tier(value, thresholds)`); NULL is never flagged; `—` = not flagged on its own. Per-province",
        "  overrides live in `indicators/thresholds.yaml` (`indicators.registry.thresholds_for(province_code)`).",
        "  Reasons: `Indicator.reasons(value, threshold)` gives the Chinese and English text.",
        "- Rule weight: the multiplier of a flag's tier points in the transparent rule score (`indicators/rules.py`):",
        f"  {MONEY_AT_RISK:g} for signs that parents' prepaid money is leaving, missing or being pulled back, {CONTEXT:g} for the rest.",
        "",
        "## How it is computed",
        "",
        "`indicators/sql/_sources.sql` (each feed with its known time and week), `_calendar.sql`, `_state.sql`",
        "(the dense grid with filing state and the active flag), `_weekly.sql` (weekly sums per institution),",
        "then one SELECT per indicator returning the grid key `k` and its value; `indicators/compute.py` stores",
        "each in a temporary table named after the indicator and joins them on `k`. No Python loop over",
        "institutions or weeks. Large data is computed a chunk of institutions at a time (a hash of the id, about",
        "`CHUNK_FEED_ROWS` consumptions and bank movements each; every window partitions by institution, so the",
        "chunks are exact) and the mart takes all chunks in one statement.",
        "",
        "## Indicators",
        "",
        "| name | 中文名 | formula | unit | direction | yellow / orange / red | rule weight | legal basis | SQL | test |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i in INDICATORS:
        t = i.thresholds
        cuts = " / ".join(_cell(v) for v in (t.yellow, t.orange, t.red))
        lines.append(
            f"| `{i.name}` | {i.name_zh} | {_cell(i.formula)} | {i.unit} | {i.direction} | {cuts} | {i.rule_weight:g} | "
            f"{'; '.join(i.legal_basis)} | [`{i.sql}`](../{i.sql}) | `{i.test}` |"
        )
    return "\n".join(lines) + "\n"
