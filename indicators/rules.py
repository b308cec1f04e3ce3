"""Warning rules: which institution-weeks go on the list, in which tier, and why (in words officials act on).

Three sources, combined per institution and week:

- Hard rules (`HARD_RULES`): breaches of the prepaid-fee rules that list an institution whatever its score,
  at a fixed minimum tier (e.g. coverage of prepaid fees below 90 % is red).
- Threshold flags: every registry indicator beyond its province's yellow / orange / red cut-off
  (`indicators.registry.thresholds_for`).
- A score: the model's calibrated probability from `marts.institution_week_scores` when the model has
  scored the row; until then a transparent rule score, logistic(points − 6), where points add
  `TIER_POINTS` (yellow 0.5, orange 1.5, red 3) times the indicator's `rule_weight` (3 for money at risk,
  0.5 for the rest; `indicators.registry`) over the threshold flags and the hard rules. The rule score is
  a ranking device, not a calibrated probability. The model's own fallback rows (`model_name =
  'rule_score'`, the same rule score) count as the rule score.

Tier = the most severe of the hard-rule tiers and the score's tier under the cut-offs (`RULE_CUTOFFS` for
the rule score, `MODEL_CUTOFFS` for the model's; both configurable). With the rule score no single indicator
lists an institution (a young institution's ratios are noisy, and the registry's yellow cut-offs flag most
institutions on something): yellow needs 6 points (e.g. a red money flag, or an orange money flag with its
hard rule), red 8; hard rules list on their own.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from data_contracts.regions import PROVINCE_CODES
from indicators import registry
from indicators.compute import changed_at, exists

HERE = Path(__file__).resolve().parent
TIER_SEVERITY = {"yellow": 1, "orange": 2, "red": 3}
SEVERITY_TIER = {v: k for k, v in TIER_SEVERITY.items()}
TIER_POINTS = {"yellow": 0.5, "orange": 1.5, "red": 3}
TIER_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色"}
RULE_SCORE_CENTRE = 6  # points at which the rule score is 0.5
SCORE_TABLE = "institution_week_scores"
RULE_SCORE_MODEL_NAME = "rule_score"  # models.scoring writes the rule score under this name before training


@dataclass(frozen=True)
class TierCutoffs:
    """Lowest score of each tier (a score at or above the cut-off earns the tier)."""

    red: float
    orange: float
    yellow: float

    def tier(self, score: float) -> str | None:
        for name in ("red", "orange", "yellow"):
            if score >= getattr(self, name):
                return name
        return None


RULE_CUTOFFS = TierCutoffs(red=0.88, orange=0.73, yellow=0.5)  # 8, 7 and 6 points
MODEL_CUTOFFS = TierCutoffs(red=0.5, orange=0.25, yellow=0.1)  # probability of abnormal closure in 8 weeks


@dataclass(frozen=True)
class HardRule:
    """`indicator op threshold` lists the institution at least at `tier`."""

    rule: str
    indicator: str
    op: str  # '<' or '>'
    threshold: float
    tier: str
    rule_zh: str
    rule_en: str


HARD_RULES: tuple[HardRule, ...] = (
    HardRule("coverage_below_90pct", "coverage_ratio", "<", 0.9, "red",
             "监管资金覆盖率低于 0.9", "supervised funds cover less than 0.9 of prepaid fees"),
    HardRule("release_beyond_consumption", "release_beyond_consumed_fen", ">", 0, "orange",
             "监管资金划拨超过消课进度", "funds released ahead of classes taught"),
    HardRule("licence_expired", "licence_days_to_expiry", "<", 0, "red",
             "办学许可证已过期", "school licence expired"),
    HardRule("bank_statement_break", "bank_continuity_breaks_4w", ">", 0, "orange",
             "监管账户流水不连续(缺失或被改动)", "supervision account statement has breaks (missing or altered movements)"),
    HardRule("refund_overdue", "overdue_refunds", ">", 0, "orange",
             "存在逾期未退费申请", "refund requests overdue"),
    HardRule("orders_feed_silent", "orders_feed_silence_weeks", ">", 4, "orange",
             "订单/消课数据超过4周未报送", "no orders or classes reported for more than 4 weeks"),
    HardRule("bank_feed_silent", "bank_feed_silence_weeks", ">", 4, "orange",
             "监管银行流水超过4周未报送", "no bank movements reported for more than 4 weeks"),
)

WARNING_COLUMNS = (
    "week", "province_code", "county_code", "institution_id", "name", "tier", "score", "rank",
    "reasons_zh", "reasons_en", "reasons", "change", "previous_tier", "score_source",
)
WARNINGS_DDL = """create table if not exists marts.warnings (
    week varchar, province_code varchar, county_code varchar, institution_id varchar, name varchar,
    tier varchar, score double, rank integer, reasons_zh varchar, reasons_en varchar, reasons json,
    change varchar, previous_tier varchar, score_source varchar)"""


def rule_score(points: float) -> float:
    return 1.0 / (1.0 + math.exp(-(points - RULE_SCORE_CENTRE)))


def _sql(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def rule_book(provinces: Iterable[str],
              thresholds_for: Callable[[str], Mapping[str, registry.Thresholds]] = registry.thresholds_for,
              ) -> pd.DataFrame:
    """One row per rule: the hard rules (any province) and each province's threshold cut-offs."""
    rows = [dict(province_code=None, indicator=h.indicator, kind="hard", rule=h.rule, op=h.op,
                 threshold=float(h.threshold), tier=h.tier) for h in HARD_RULES]
    for province in provinces:
        for name, cuts in thresholds_for(province).items():
            op = ">" if registry.by_name(name).direction == registry.HIGHER else "<"
            rows += [dict(province_code=province, indicator=name, kind="threshold", rule=f"threshold_{tier}",
                          op=op, threshold=float(cut), tier=tier)
                     for tier in registry.TIERS if (cut := cuts.threshold(tier)) is not None]
    book = pd.DataFrame(rows)
    book["severity"] = book["tier"].map(TIER_SEVERITY)
    book["points"] = book["tier"].map(TIER_POINTS) * book["indicator"].map(
        lambda name: registry.by_name(name).rule_weight)
    return book


def _number(value: float) -> str:
    """A threshold as an official reads it: 0.9, 5, 2,000,000."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


_HARD_BY_RULE = {h.rule: h for h in HARD_RULES}
FLAG_FIELDS = ["indicator", "kind", "rule", "op", "threshold", "tier", "value"]


def _flag_texts(name: str, kind: str, rule: str, op: str, threshold: float, tier: str, value: float,
                ) -> tuple[str, str]:
    """Chinese and English reason for one broken rule, always with the value and the threshold."""
    indicator = registry.by_name(name)
    zh, en = indicator.reasons(value, threshold)
    if "{threshold" not in indicator.reason_zh:
        zh += f"(阈值 {op}{_number(threshold)})"
        en += f" (threshold {op} {_number(threshold)})"
    if kind == "hard":
        hard = _HARD_BY_RULE[rule]
        return f"【{TIER_ZH[tier]}·硬性规则】{hard.rule_zh}:{zh}", f"[{tier}, hard rule] {hard.rule_en}: {en}"
    return f"【{TIER_ZH[tier]}】{zh}", f"[{tier}] {en}"


def _contribution_texts(contributions: str | None, top: int = 3) -> tuple[list[dict], str, str]:
    """The model's largest positive contributions, as reason items and short texts."""
    items = [c for c in json.loads(contributions or "[]") if (c.get("contribution") or 0) > 0][:top]
    if not items:
        return [], "", ""

    def label(c: dict) -> tuple[str, str]:
        try:
            name_zh = registry.by_name(c["indicator"]).name_zh
        except KeyError:
            name_zh = c["indicator"]
        value = c.get("value")
        shown = "—" if value is None else _number(round(float(value), 3))
        return f"{name_zh} {shown}(+{c['contribution']:.2f})", f"{c['indicator']} {shown} (+{c['contribution']:.2f})"

    labels = [label(c) for c in items]
    reason_items = [dict(indicator=c["indicator"], rule="model_contribution", value=c.get("value"), threshold=None,
                         tier=None, contribution=c["contribution"]) for c in items]
    return (reason_items, "主要风险因素:" + "、".join(z for z, _ in labels),
            "main factors: " + ", ".join(e for _, e in labels))


def _verdict(points: float, model_score: float, hard_severity: float,
             cutoffs: Mapping[str, TierCutoffs]) -> tuple[str, float, str, str | None] | None:
    """(tier, score, source, tier of the score alone) of one candidate, or None if it is not listed."""
    source = "rules" if pd.isna(model_score) else "model"
    score = rule_score(points) if source == "rules" else float(model_score)
    score_tier = cutoffs[source].tier(score)
    severities = [TIER_SEVERITY[score_tier]] if score_tier else []
    if not pd.isna(hard_severity):
        severities.append(int(hard_severity))
    if not severities:
        return None
    return SEVERITY_TIER[max(severities)], score, source, score_tier


def _describe(verdict: tuple[str, float, str, str | None], contributions: str | None, flag_texts: list,
              flag_items: list, cutoffs: Mapping[str, TierCutoffs]) -> tuple:
    """(tier, score, source, reasons_zh, reasons_en, reasons JSON) of one listed candidate.

    `flag_texts` and `flag_items` are its broken rules, hard rules first, most severe first.
    """
    tier, score, source, score_tier = verdict
    texts, items = list(flag_texts), list(flag_items)
    label_zh, label_en = ("模型评分", "model score") if source == "model" else ("规则评分", "rule score")
    cut = getattr(cutoffs[source], score_tier or "yellow")
    relation = "≥" if score_tier else "<"
    texts.append((f"{label_zh} {score:.2f}({relation}{TIER_ZH[score_tier or 'yellow']}线 {cut:g})",
                  f"{label_en} {score:.2f} ({relation} {score_tier or 'yellow'} cut-off {cut:g})"))
    items.append(dict(indicator="score", rule=f"{source}_score", value=score, threshold=cut, tier=score_tier))
    if source == "model":
        contribution_items, zh, en = _contribution_texts(contributions)
        if contribution_items:
            texts.append((zh, en))
            items += contribution_items
    return (tier, score, source, ";".join(z for z, _ in texts), "; ".join(e for _, e in texts),
            json.dumps(items, ensure_ascii=False))


def _flags_per_candidate(flags: pd.DataFrame) -> pd.DataFrame:
    """Per institution-week: the texts and JSON items of its broken rules."""
    keys = ["institution_id", "week"]
    flags = flags.sort_values([*keys, "kind", "severity", "indicator"], ascending=[True, True, True, False, True])
    rows = list(flags[FLAG_FIELDS].itertuples(index=False, name=None))
    flags = flags.assign(
        text=[_flag_texts(*r) for r in rows],
        item=[dict(indicator=i, rule=rule, value=v, threshold=t, tier=tier) for i, _, rule, _, t, tier, v in rows],
    )
    return flags.groupby(keys, sort=False).agg(flag_texts=("text", list), flag_items=("item", list))


def _model_scores_relation(con: duckdb.DuckDBPyConnection) -> str:
    """The newest model version's scores per institution-week of `selected_weeks`, or an empty relation before
    the model runs. The weeks are filtered before the window: the scores of every week, each with its reasons'
    JSON, were ranked for each block of four weeks."""
    if not exists(con, "marts", SCORE_TABLE):
        return "(select null::varchar as institution_id, null::varchar as week, null::double as score, " \
               "null::json as contributions where false)"
    return (f"(select * from marts.{SCORE_TABLE} where model_name <> '{RULE_SCORE_MODEL_NAME}' "
            "and week in (select week from selected_weeks) "
            "qualify row_number() over (partition by institution_id, week order by model_version desc) = 1)")


def _week_pairs(con: duckdb.DuckDBPyConnection, weeks: list[str]) -> pd.DataFrame:
    """`weeks` and the week after each, those with indicators, each with the ISO week before it (what `change`
    compares against)."""
    mart_weeks = {w for (w,) in con.execute("select distinct week from marts.institution_week_indicators").fetchall()}
    compared = sorted({w for week in weeks for w in (week, _next_week(week))} & mart_weeks)
    return pd.DataFrame({"week": compared, "previous_week": [_previous_week(w) for w in compared]})


def _flags_table(con: duckdb.DuckDBPyConnection, weeks: list[str],
                 thresholds_for: Callable[[str], Mapping[str, registry.Thresholds]]) -> None:
    """The temporary table `rule_flags`: every broken rule of `weeks` (see `rule_flags`)."""
    con.register("selected_weeks", pd.DataFrame({"week": weeks}))
    provinces = [p for (p,) in con.execute(
        "select distinct province_code from marts.institution_week_indicators "
        "where week in (select week from selected_weeks)").fetchall()]
    book = rule_book(provinces, thresholds_for)
    mart_columns = {c for (c,) in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'marts' and table_name = 'institution_week_indicators'").fetchall()}
    missing = sorted(set(book["indicator"]) - mart_columns)
    if missing:
        con.unregister("selected_weeks")
        raise ValueError(f"marts.institution_week_indicators lacks indicator columns {missing}")
    columns = ", ".join(f'"{c}"' for c in sorted(set(book["indicator"])))
    con.register("rule_book", book)
    con.execute(f"create or replace temp table rule_flags as {_sql('rules_flags.sql').format(columns=columns)}")
    for name in ("selected_weeks", "rule_book"):
        con.unregister(name)


def rule_flags(con: duckdb.DuckDBPyConnection, weeks: list[str],
               thresholds_for: Callable[[str], Mapping[str, registry.Thresholds]] = registry.thresholds_for,
               ) -> pd.DataFrame:
    """Every broken rule of `weeks`: institution_id, week, indicator, kind, rule, op, threshold, tier, points, value."""
    _flags_table(con, weeks, thresholds_for)
    try:
        return con.execute("select * from rule_flags").df()
    finally:
        con.execute("drop table if exists temp.rule_flags")


def _min_points(cutoffs: TierCutoffs) -> float:
    """The fewest points whose rule score reaches the lowest cut-off (a little less: the list is decided in Python)."""
    if cutoffs.yellow <= 0:
        return -math.inf
    if cutoffs.yellow >= 1:
        return math.inf
    return RULE_SCORE_CENTRE + math.log(cutoffs.yellow / (1 - cutoffs.yellow)) - 1e-6


def rule_points(con: duckdb.DuckDBPyConnection, weeks: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every mart row of `weeks` (default all) with its points, whether a hard rule broke, and its rule score;
    and the flags behind them. The candidate list only sees flagged rows; backtests and the model's fallback
    need every row, scored the same way."""
    rows = con.execute("select institution_id, week, province_code from marts.institution_week_indicators"
                       + ("" if weeks is None else " where week in (select unnest(?))"),
                       [] if weeks is None else [weeks]).df()
    flags = rule_flags(con, sorted(rows["week"].unique()))
    per_row = (flags.assign(hard=flags["kind"].eq("hard"))
               .groupby(["institution_id", "week"]).agg(points=("points", "sum"), hard=("hard", "any")))
    scored = rows.join(per_row, on=["institution_id", "week"])
    scored["points"] = scored["points"].fillna(0.0)
    scored["hard"] = scored["hard"].eq(True)
    scored["score"] = scored["points"].map(rule_score)
    return scored, flags


def evaluate(con: duckdb.DuckDBPyConnection, weeks: list[str],
             thresholds_for: Callable[[str], Mapping[str, registry.Thresholds]] = registry.thresholds_for,
             rule_cutoffs: TierCutoffs = RULE_CUTOFFS, model_cutoffs: TierCutoffs = MODEL_CUTOFFS
             ) -> Iterator[pd.DataFrame]:
    """The listed rows of `weeks` (columns of marts.warnings except change / previous_tier), in the list's order
    and ranked over all of them, `LISTED_PER_PART` rows at a time: their reasons are formatted in Python."""
    _flags_table(con, weeks, thresholds_for)
    con.register("selected_weeks", pd.DataFrame({"week": weeks}))
    try:
        candidates = con.execute(_sql("rules_candidates.sql").format(model_scores=_model_scores_relation(con)),
                                 {"min_model_score": model_cutoffs.yellow, "min_points": _min_points(rule_cutoffs)}
                                 ).df()
        cutoffs = {"rules": rule_cutoffs, "model": model_cutoffs}
        verdicts = [_verdict(p, m, h, cutoffs) for p, m, h in
                    zip(candidates["points"], candidates["model_score"], candidates["hard_severity"], strict=True)]
        listed = candidates.loc[[v is not None for v in verdicts]].assign(verdict=[v for v in verdicts if v])
        listed["tier"] = [v[0] for v in listed["verdict"]]
        listed["score"] = [v[1] for v in listed["verdict"]]
        listed["severity"] = listed["tier"].map(TIER_SEVERITY)
        listed = listed.sort_values(["week", "province_code", "severity", "score", "institution_id"],
                                    ascending=[True, True, False, False, True])
        listed["rank"] = listed.groupby(["week", "province_code"]).cumcount() + 1
        for start in range(0, len(listed), LISTED_PER_PART):
            yield _described(con, listed.iloc[start:start + LISTED_PER_PART], cutoffs)
    finally:
        con.unregister("selected_weeks")
        con.execute("drop table if exists temp.rule_flags")


def _described(con: duckdb.DuckDBPyConnection, listed: pd.DataFrame, cutoffs: Mapping[str, TierCutoffs]
               ) -> pd.DataFrame:
    """Listed rows with their reasons, from their broken rules in `temp.rule_flags`."""
    keys = ["institution_id", "week"]
    con.register("listed_keys", listed[keys])
    flags = con.execute("select * from rule_flags semi join listed_keys using (institution_id, week)").df()
    con.unregister("listed_keys")
    frame = listed.join(_flags_per_candidate(flags), on=keys)
    described = [
        _describe(v, c, t if isinstance(t, list) else [], i if isinstance(i, list) else [], cutoffs)
        for v, c, t, i in zip(frame["verdict"], frame["contributions"], frame["flag_texts"], frame["flag_items"],
                              strict=True)]
    out = frame[["week", "province_code", "county_code", "institution_id", "name", "rank"]].copy()
    for position, column in enumerate(("tier", "score", "score_source", "reasons_zh", "reasons_en", "reasons")):
        out[column] = [d[position] for d in described]
    return out[[c for c in WARNING_COLUMNS if c not in ("change", "previous_tier")]]


WEEK_BUILDS = "ops.week_builds"
WEEKS_PER_EVALUATION = 4  # a first build of 52 national weeks at once held every rule flag in pandas (7.6 GB at 15k)
LISTED_PER_PART = 50_000  # listed rows formatted at a time, however many a block lists: the first 4 national weeks
# (before `first_listed_week` existed) listed 556k rows, each with several broken rules: 9.5 GB formatted at once
WEEK_BUILDS_DDL = (f"create table if not exists {WEEK_BUILDS} "
                   "(week varchar primary key, built_at timestamptz, rule_book varchar)")


def rule_book_fingerprint(
        thresholds_for: Callable[[str], Mapping[str, registry.Thresholds]] = registry.thresholds_for,
        rule_cutoffs: TierCutoffs = RULE_CUTOFFS, model_cutoffs: TierCutoffs = MODEL_CUTOFFS) -> str:
    """A hash of everything besides the data that decides a week's list: the provinces' thresholds, rule
    weights, hard rules, points and cut-offs. A week built under another rule book is stale, so editing
    thresholds.yaml or a weight republishes every week instead of leaving old lists under old rules. Every
    province of the standard counts, so a province's first delivery does not look like a new rule book."""
    parts = [rule_book(PROVINCE_CODES, thresholds_for).to_csv(index=False), repr(HARD_RULES), repr(TIER_POINTS),
             repr(RULE_SCORE_CENTRE), repr(rule_cutoffs), repr(model_cutoffs)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _next_week(week: str) -> str:
    return (date.fromisocalendar(int(week[:4]), int(week[6:]), 1) + timedelta(days=7)).strftime("%G-W%V")


def _previous_week(week: str) -> str:
    return (date.fromisocalendar(int(week[:4]), int(week[6:]), 1) - timedelta(days=7)).strftime("%G-W%V")


def _week_builds_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists ops")
    con.execute(WEEK_BUILDS_DDL)
    con.execute(f"alter table {WEEK_BUILDS} add column if not exists rule_book varchar")  # tables of 2026-11-22


def _record_builds(con: duckdb.DuckDBPyConnection, weeks: list[str], fingerprint: str) -> list[str]:
    """Stamp `weeks` and the week after each (its `change` compares against them) in ops.week_builds, which
    publication compares with its last publication of the week, with the rule book they were built under.
    Returns the stamped weeks."""
    _week_builds_table(con)
    stamped = list(_week_pairs(con, weeks)["week"])
    con.execute(f"insert or replace into {WEEK_BUILDS} (week, built_at, rule_book) "
                "select unnest(?::varchar[]), now(), ?", [stamped, fingerprint])
    return stamped


def first_listed_week(con: duckdb.DuckDBPyConnection) -> str | None:
    """The first week whose institutions can be listed: the first in which both the bank movements and the class
    consumptions have begun (the one that has, when the other feed is empty; None when both are).

    The platform delivers the prepaid orders still open when it goes live, paid weeks before the banks' and the
    consumption feeds begin. In those weeks every institution looks unfunded and idle (coverage 0, no movements
    for months, sales many times the classes delivered): the national bench data listed 99 % of institutions,
    most of them red, in its 10 weeks of orders before the other feeds began."""
    return con.execute(
        """select strftime(date_trunc('week', greatest(
               (select min(booked_at) from staging.account_movements),
               (select min(consumed_at) from staging.consumptions))), '%G-W%V')"""
    ).fetchall()[0][0]  # fetched to the end: DuckDB refuses a `register` beside an unfinished result


def build_warnings(con: duckdb.DuckDBPyConnection, weeks: list[str] | None = None,
                   progress: Callable[[str], None] | None = None, **options) -> int:
    """Rebuild `marts.warnings` for `weeks` (default: every week with indicators) and `marts.warning_drops`; weeks
    before `first_listed_week` list nobody.

    `options` go to `evaluate` (thresholds_for, rule_cutoffs, model_cutoffs); `progress` hears of each block of
    weeks (a national build takes tens of minutes). Returns the rows listed for `weeks`. `refresh_warnings`
    is the incremental entry point that also stamps `ops.week_builds`.
    """
    con.execute("create schema if not exists marts")
    con.execute(WARNINGS_DDL)
    if weeks is None:
        weeks = [w for (w,) in con.execute(
            "select distinct week from marts.institution_week_indicators order by week").fetchall()]
        con.execute("delete from marts.warnings")
        con.execute("drop table if exists marts.warning_drops")
    else:
        con.execute("delete from marts.warnings where week in (select unnest(?))", [weeks])
    listed_rows = 0
    first = first_listed_week(con)
    listable = [w for w in weeks if first is None or w >= first]
    if progress and len(listable) < len(weeks):
        progress(f"warnings: {len(weeks) - len(listable)} weeks before {first} not listed (the first week with both "
                 "bank movements and class consumptions)")
    for start in range(0, len(listable), WEEKS_PER_EVALUATION):
        block = listable[start:start + WEEKS_PER_EVALUATION]
        with closing(evaluate(con, block, **options)) as parts:  # its temporary tables go even if an insert fails
            for listed in parts:
                con.register("listed_rows", listed.assign(change=None, previous_tier=None)[list(WARNING_COLUMNS)])
                con.execute(f"insert into marts.warnings ({', '.join(WARNING_COLUMNS)}) "
                            f"select {', '.join(WARNING_COLUMNS)} from listed_rows")
                con.unregister("listed_rows")
                listed_rows += len(listed)
        if progress:
            progress(f"warnings: weeks {block[0]}…{block[-1]} built ({start + len(block)} of {len(listable)} weeks, "
                     f"{listed_rows:,} rows listed)")
    con.register("week_pairs", _week_pairs(con, weeks))
    con.execute(_sql("rules_changes.sql"))
    con.unregister("week_pairs")
    return listed_rows


def changed_weeks(con: duckdb.DuckDBPyConnection, fingerprint: str | None = None) -> list[str]:
    """Weeks whose indicators (`changed_at`) or scores (`_scored_at`) are newer than the week's last build,
    weeks built under another rule book (`fingerprint`, default the current one), and weeks never built.
    Without those columns every week counts as changed (no way to tell)."""
    has_scores = exists(con, "marts", SCORE_TABLE)
    if not (exists(con, "ops", "week_builds") and exists(con, "marts", "warnings")
            and exists(con, "marts", "institution_week_indicators", "_computed_at")
            and (not has_scores or exists(con, "marts", SCORE_TABLE, "_scored_at"))):
        return [w for (w,) in con.execute(
            "select distinct week from marts.institution_week_indicators order by week").fetchall()]
    _week_builds_table(con)
    scored = (f"select week, max(_scored_at) as changed_at from marts.{SCORE_TABLE} group by week" if has_scores
              else "select null::varchar as week, null::timestamptz as changed_at where false")
    sql = _sql("rules_changed_weeks.sql").format(scored=scored, changed_at=changed_at(con))
    return [w for (w,) in con.execute(sql, {"rule_book": fingerprint or rule_book_fingerprint()}).fetchall()]


def refresh_warnings(con: duckdb.DuckDBPyConnection, progress: Callable[[str], None] | None = None,
                     **options) -> tuple[int, list[str]]:
    """Rebuild only the weeks whose indicators, scores or rule book changed since they were last built (all
    weeks the first time); returns the rows listed in them and the weeks stamped in ops.week_builds (those
    rebuilt and the week after each)."""
    fingerprint = rule_book_fingerprint(**options)
    weeks = changed_weeks(con, fingerprint)
    if not weeks:
        return 0, []
    rows = build_warnings(con, weeks, progress, **options)
    return rows, _record_builds(con, weeks, fingerprint)
