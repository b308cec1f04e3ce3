"""The bad-input corpus: every kind of broken delivery ends as a named quarantine rule or a file rejection
that `summary_text` and the dashboard's data-quality view show, while the good rows beside it load and no
fen is lost or counted twice.

Each case ingests, on a real DuckDB file, a base landing (one valid row per feed, delivered 2026-03-10) plus
the case's delivery of 2026-03-11, which holds a valid companion row next to the bad ones (unless the file
itself is unusable).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dashboards.data import data_quality
from data_contracts.feeds import FEEDS
from ingest_helpers import GOOD, INST, INST2, PII_KEY, csv_bytes, row, uscc, write_feed
from pipelines.ingest import ingest_landing, summary_text
from pipelines.warehouse import connect

DAY = "20260311"  # the case's delivery; the base is delivered the day before
SHANGHAI = ZoneInfo("Asia/Shanghai")

# A valid row per feed with a fresh key, delivered in the case's file beside the bad rows.
COMPANION = {
    "institutions": row("institutions", institution_id=INST2, name="北京明德教育"),
    "orders": row("orders", order_id="O2", paid_fen="100000"),
    "consumptions": row("consumptions", consumption_id="K2", class_hours="3", consumed_at="2026-03-06T10:00:00+08:00"),
    "refunds": row("refunds", refund_id="R2", requested_fen="20000"),
    "evaluations": row("evaluations", evaluation_id="E2", stars="5"),
    "complaints": row("complaints", complaint_id="Q2"),
    # a release of 10,000 fen after the 240,000 fen deposit M1 of the base: balance 230,000
    "account_movements": row("account_movements", movement_id="M2", kind="release", amount_fen="10000", order_id="",
                             balance_after_fen="230000", booked_at="2026-03-06T10:00:00+08:00"),
}
WRONG_CHECK = INST[:17] + ("0" if INST[17] != "0" else "1")


def file_name(feed: str, ext: str = "csv", seq: int | None = None) -> str:
    return f"{feed}_{DAY}{'' if seq is None else f'_{seq}'}.{ext}"


@dataclass(frozen=True)
class Case:
    kind: str
    description: str
    feed: str
    build: Callable[[Path], None]
    quarantine: tuple[str, ...] = ()  # every rule the bad rows of the case's file break
    rejected: str | None = None  # a fragment of the case's file rejection reason
    status: str | None = None  # other outcomes: 'duplicate', 'nothing new', 'continuity break'
    loaded: tuple[dict, ...] | None = None  # rows of the case expected in staging (default: the companion)
    file: str | None = None  # the case's file (default: <feed>_20260311.csv)

    @property
    def case_file(self) -> str:
        return self.file or file_name(self.feed)

    @property
    def expected_rows(self) -> tuple[dict, ...]:
        if self.loaded is not None:
            return self.loaded
        return () if self.rejected or self.status == "duplicate" else (COMPANION[self.feed],)


# ---- how a case's delivery is built -------------------------------------------------------------------

def rows(feed: str, *bad: dict, companion: bool = True, encoding: str = "utf-8") -> Callable[[Path], None]:
    """A CSV delivery: the companion row first, then the bad rows."""
    return lambda landing: write_feed(landing, feed, [COMPANION[feed]] * companion + list(bad), date=DAY,
                                      encoding=encoding)


def raw(feed: str, content: Callable[[], bytes], name: str | None = None) -> Callable[[Path], None]:
    def build(landing: Path) -> None:
        (landing / feed).mkdir(exist_ok=True)
        (landing / feed / (name or file_name(feed))).write_bytes(content())
    return build


def companion_csv(feed: str) -> bytes:
    return csv_bytes(feed, [COMPANION[feed]])


def with_manifest(feed: str, text: str | None = None, **wrong) -> Callable[[Path], None]:
    """The companion's file with a manifest that is right except for `wrong` (or is `text` instead)."""
    def build(landing: Path) -> None:
        data = companion_csv(feed)
        manifest = {"rows": 1, "amount_fen_total": int(COMPANION[feed][FEEDS[feed].amount_column]),
                    "sha256": hashlib.sha256(data).hexdigest()}
        path = write_feed(landing, feed, [COMPANION[feed]], date=DAY)
        path.with_name(path.name + ".manifest.json").write_text(text or json.dumps({**manifest, **wrong}),
                                                                encoding="utf-8")
    return build


def parquet_orders(*order_rows: dict, truncate: bool = False, **types: pa.DataType) -> Callable[[Path], None]:
    """Orders as Parquet: text columns unless `types` says otherwise (values converted from the row's text)."""
    converters = {pa.float64(): float, pa.int64(): int,
                  pa.timestamp("us"): lambda v: dt.datetime.fromisoformat(v).astimezone(SHANGHAI).replace(tzinfo=None)}

    def build(landing: Path) -> None:
        columns = {}
        for c in FEEDS["orders"].column_names:
            values = [r[c] for r in order_rows]
            kind = types.get(c, pa.string())
            columns[c] = pa.array([converters[kind](v) for v in values] if c in types else values, kind)
        path = landing / "orders" / file_name("orders", "parquet")
        path.parent.mkdir(exist_ok=True)
        pq.write_table(pa.table(columns), path)
        if truncate:
            path.write_bytes(path.read_bytes()[:-20])
    return build


def mixed_encodings(landing: Path) -> None:
    """A bank file whose first row is UTF-8 and whose second row is GB18030."""
    bank = "工商银行北京分行"
    utf8 = csv_bytes("account_movements", [COMPANION["account_movements"] | {"bank_code": bank}])
    gb = csv_bytes("account_movements", [row("account_movements", movement_id="M3", bank_code=bank)], "gb18030")
    raw("account_movements", lambda: utf8 + gb.split(b"\n", 1)[1])(landing)


def bank_file_twice(rewrite: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """The companion's bank file delivered again under sequence 2, its bytes rewritten (or not)."""
    def build(landing: Path) -> None:
        first = write_feed(landing, "account_movements", [COMPANION["account_movements"]], date=DAY, seq=1)
        first.with_name(file_name("account_movements", seq=2)).write_bytes(rewrite(first.read_bytes()))
    return build


def replace_in(feed: str, old: bytes, new: bytes) -> Callable[[], bytes]:
    return lambda: companion_csv(feed).replace(old, new, 1)


ORDER = "orders"
BREAK = row("account_movements", movement_id="M3", kind="interest", amount_fen="50", order_id="",
            balance_after_fen="230099", booked_at="2026-03-07T10:00:00+08:00")  # 230,050 expected

CASES = [
    # types
    Case("text_in_integer", "课时数写成文字 class_hours 'forty'", ORDER,
         rows(ORDER, row(ORDER, order_id="O3", class_hours="forty")), quarantine=("orders.class_hours.format",)),
    Case("float_money_csv", "金额带小数 paid_fen 1200.50", ORDER,
         rows(ORDER, row(ORDER, order_id="O3", paid_fen="1200.50")), quarantine=("orders.paid_fen.format",)),
    Case("float_money_parquet", "Parquet 金额为浮点 paid_fen double 1200.0", ORDER,
         parquet_orders(row(ORDER, order_id="O3", paid_fen="1200"), paid_fen=pa.float64()),
         quarantine=("orders.paid_fen.format",), loaded=(), file=file_name(ORDER, "parquet")),
    Case("thousands_separator", "金额带千分位 list_price_fen '300,000'", ORDER,
         rows(ORDER, row(ORDER, order_id="O3", list_price_fen="300,000")), quarantine=("orders.list_price_fen.format",)),
    Case("negative_money", "负金额流水 amount_fen -240000", "account_movements",
         rows("account_movements", row("account_movements", movement_id="M3", amount_fen="-240000",
                                       booked_at="2026-03-07T10:00:00+08:00")),
         quarantine=("account_movements.amount_fen.positive",)),
    Case("overdrawn_balance", "监管账户余额为负 balance_after_fen -1", "account_movements",
         rows("account_movements", row("account_movements", movement_id="M3", kind="interest", order_id="",
                                       amount_fen="1", balance_after_fen="-1", booked_at="2026-03-07T10:00:00+08:00")),
         quarantine=("account_movements.balance_after_fen.non_negative",)),
    Case("slash_date", "日期格式错误 licence_expiry 2028/12/31", "institutions",
         rows("institutions", row("institutions", institution_id=uscc("91110108MA01ABCD3"), licence_expiry="2028/12/31")),
         quarantine=("institutions.licence_expiry.format",)),
    Case("timestamp_without_offset", "时间无时区 consumed_at 2026-03-05T10:00:00", "consumptions",
         rows("consumptions", row("consumptions", consumption_id="K3", consumed_at="2026-03-05T10:00:00")),
         quarantine=("consumptions.consumed_at.format",)),
    Case("parquet_naive_timestamp", "Parquet 时间戳无时区 paid_at timestamp without tz", ORDER,
         parquet_orders(row(ORDER, order_id="O3"), row(ORDER, order_id="O4"), paid_at=pa.timestamp("us")),
         quarantine=("orders.paid_at.format",), loaded=(), file=file_name(ORDER, "parquet")),
    Case("bad_boolean", "布尔值写成'是' fire_safety_ok", "institutions",
         rows("institutions", row("institutions", institution_id=uscc("91110108MA01ABCD3"), fire_safety_ok="是")),
         quarantine=("institutions.fire_safety_ok.format",)),
    # identifiers
    Case("uscc_check_character", "统一社会信用代码校验位错误", ORDER,
         rows(ORDER, row(ORDER, order_id="O3", institution_id=WRONG_CHECK)),
         quarantine=("orders.institution_id.uscc_check", "orders.institution_filed")),
    Case("uscc_forbidden_letter", "信用代码含字母 I/O(不在字符集内)", "institutions",
         rows("institutions", row("institutions", institution_id="91110108MA01ABCIO5")),
         quarantine=("institutions.institution_id.uscc_check",)),
    Case("uscc_too_short", "信用代码只有17位", "complaints",
         rows("complaints", row("complaints", complaint_id="Q3", institution_id=INST[:17])),
         quarantine=("complaints.institution_id.uscc_check",)),
    Case("phone_with_dashes", "家长手机号带连字符", ORDER,
         rows(ORDER, row(ORDER, order_id="O3", parent_phone="138-1234-5678")), quarantine=("orders.parent_phone.format",)),
    Case("missing_phone", "订单缺家长手机号", ORDER,
         rows(ORDER, row(ORDER, order_id="O3", parent_phone="")), quarantine=("orders.parent_phone.required",)),
    Case("missing_key", "消课记录缺主键 consumption_id", "consumptions",
         rows("consumptions", row("consumptions", consumption_id="")),
         quarantine=("consumptions.consumption_id.required",)),
    # enumerations
    Case("unknown_channel", "未知支付渠道 paypal", ORDER,
         rows(ORDER, row(ORDER, order_id="O3", channel="paypal")), quarantine=("orders.channel.enum",)),
    Case("unknown_bank_kind", "未知流水类型 withdrawal", "account_movements",
         rows("account_movements", row("account_movements", movement_id="M3", kind="withdrawal", order_id="",
                                       booked_at="2026-03-07T10:00:00+08:00")),
         quarantine=("account_movements.kind.enum",)),
    Case("enum_wrong_case", "枚举值大小写不符 status OPEN", "complaints",
         rows("complaints", row("complaints", complaint_id="Q3", status="OPEN")), quarantine=("complaints.status.enum",)),
    # time
    Case("future_paid_at", "缴费时间晚于报送日", ORDER,
         rows(ORDER, row(ORDER, order_id="O3", paid_at="2026-03-12T00:00:00+08:00")),
         quarantine=("orders.paid_at_not_after_delivery",)),
    Case("future_record_date", "备案日期晚于报送日", "institutions",
         rows("institutions", row("institutions", institution_id=uscc("91110108MA01ABCD3"), record_date="2026-03-12")),
         quarantine=("institutions.record_date_not_after_delivery",)),
    # money and references
    Case("paid_over_list_price", "实收高于标价", ORDER,
         rows(ORDER, row(ORDER, order_id="O3", paid_fen="300001")), quarantine=("orders.paid_le_list_price",)),
    Case("consumption_beyond_hours", "消课超出订单课时(40课时:2+3+36)", "consumptions",
         rows("consumptions", row("consumptions", consumption_id="K3", class_hours="36",
                                  consumed_at="2026-03-07T10:00:00+08:00")),
         quarantine=("consumptions.hours_within_order",)),
    Case("refund_unknown_order", "退费申请指向不存在的订单", "refunds",
         rows("refunds", row("refunds", refund_id="R3", order_id="O404")), quarantine=("refunds.order_known",)),
    Case("refund_other_institution", "退费机构与订单机构不符", "refunds",
         rows("refunds", row("refunds", refund_id="R3", institution_id=INST2)),
         quarantine=("refunds.institution_is_orders",)),
    Case("stars_out_of_range", "评价星级为0", "evaluations",
         rows("evaluations", row("evaluations", evaluation_id="E3", stars="0")), quarantine=("evaluations.stars.range",)),
    Case("county_outside_province", "县代码不属于所报省份", "institutions",
         rows("institutions", row("institutions", institution_id=uscc("91110108MA01ABCD3"), county_code="440104")),
         quarantine=("institutions.county_in_province",)),
    Case("duplicate_key_in_file", "同一文件内主键重复且内容不同", ORDER,
         rows(ORDER, row(ORDER, order_id="O3"), row(ORDER, order_id="O3", paid_fen="200000")),
         quarantine=("orders.key_unique_in_file",)),
    Case("twin_rows_in_file", "同一文件内完全相同的两行", "refunds",
         rows("refunds", row("refunds", refund_id="R3"), row("refunds", refund_id="R3")),
         quarantine=("refunds.key_unique_in_file",)),
    # unreadable files
    Case("truncated_parquet", "Parquet 文件被截断", ORDER,
         parquet_orders(COMPANION[ORDER], truncate=True), rejected="unreadable Parquet", file=file_name(ORDER, "parquet")),
    Case("csv_broken_quote", "CSV 引号未闭合", ORDER,
         raw(ORDER, replace_in(ORDER, b"\nO2,", b'\n"O2,')), rejected="unreadable CSV"),
    Case("csv_ragged_row", "CSV 某行字段数不符", ORDER,
         raw(ORDER, lambda: companion_csv(ORDER) + b"O3,x\n"), rejected="unreadable CSV"),
    Case("mixed_encodings", "同一文件混用 UTF-8 与 GB18030", "account_movements", mixed_encodings,
         rejected="mixed encodings"),
    Case("utf16_file", "UTF-16 编码文件", ORDER,
         raw(ORDER, lambda: companion_csv(ORDER).decode("utf-8").encode("utf-16")), rejected="neither UTF-8 nor GB18030"),
    Case("empty_file", "空文件(0字节)", ORDER, raw(ORDER, lambda: b""), rejected="empty file"),
    Case("blank_file", "只有空行的文件", ORDER, raw(ORDER, lambda: b"\n \n"), rejected="empty file"),
    Case("extra_column", "多出一列", ORDER,
         raw(ORDER, replace_in(ORDER, b"status\n", b"status,remark\n")), rejected="unexpected remark"),
    Case("missing_column", "缺少一列 channel", ORDER,
         raw(ORDER, replace_in(ORDER, b",channel,", b",")), rejected="missing channel"),
    Case("duplicate_column", "表头列名重复", ORDER,
         raw(ORDER, replace_in(ORDER, b"course_id,", b"order_id,")), rejected="duplicate column names"),
    # names
    Case("misnamed_file", "文件名日期格式错误 orders_2026-03-11.csv", ORDER,
         raw(ORDER, lambda: companion_csv(ORDER), "orders_2026-03-11.csv"), rejected="does not follow",
         file="orders_2026-03-11.csv"),
    Case("impossible_date_in_name", "文件名日期不存在 20260231", ORDER,
         raw(ORDER, lambda: companion_csv(ORDER), "orders_20260231.csv"), rejected="not a calendar date",
         file="orders_20260231.csv"),
    Case("file_in_wrong_folder", "退费文件放进了订单目录", ORDER,
         raw(ORDER, lambda: csv_bytes("refunds", [COMPANION["refunds"]]), "refunds_20260311.csv"),
         rejected="a refunds file in the orders/ folder", file="refunds_20260311.csv"),
    # manifests
    Case("manifest_rows", "清单行数不符", "refunds", with_manifest("refunds", rows=2), rejected="rows 2 in manifest"),
    Case("manifest_sha256", "清单 sha256 不符", "refunds", with_manifest("refunds", sha256="0" * 64),
         rejected="sha256 differs"),
    Case("manifest_amount", "清单金额合计不符", "account_movements",
         with_manifest("account_movements", amount_fen_total=10001), rejected="amount_fen_total 10001"),
    Case("manifest_not_json", "清单不是 JSON", ORDER, with_manifest(ORDER, text="{rows: 1"),
         rejected="manifest is not valid JSON"),
    # deliveries
    Case("header_only", "只有表头的文件", ORDER, rows(ORDER, companion=False), status="nothing new", loaded=()),
    Case("bank_file_twice_same_bytes", "同一银行文件以两个文件名重复报送", "account_movements",
         bank_file_twice(lambda data: data), status="duplicate", loaded=(COMPANION["account_movements"],),
         file=file_name("account_movements", seq=2)),
    Case("bank_file_twice_rewritten", "同一银行文件加 BOM、换行改 CRLF 后以另一文件名再次报送", "account_movements",
         bank_file_twice(lambda data: b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")), status="nothing new",
         loaded=(COMPANION["account_movements"],), file=file_name("account_movements", seq=2)),
    Case("balance_continuity_break", "监管账户余额不连续(应为230,050)", "account_movements",
         rows("account_movements", BREAK), status="continuity break", loaded=(COMPANION["account_movements"], BREAK)),
]


def key(feed: str, r: dict) -> tuple:
    return tuple(r[c] for c in FEEDS[feed].key)


def expected_staging(case: Case) -> dict[str, list[dict]]:
    """Rows each feed must hold after the case: the base row, plus the case's good rows in its feed."""
    expected = {feed: [GOOD[feed]] for feed in FEEDS}
    expected[case.feed] += list(case.expected_rows)
    return expected


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Callable[[Case], Path]:
    """Run a case once (base landing + its delivery) and return the warehouse file."""
    done: dict[str, Path] = {}

    def run(case: Case) -> Path:
        if case.kind not in done:
            root = tmp_path_factory.mktemp(case.kind)
            landing = root / "landing"
            for feed in FEEDS:
                write_feed(landing, feed, [GOOD[feed]])
            case.build(landing)
            with connect(root / "warehouse.duckdb") as con:
                ingest_landing(con, landing, PII_KEY)
            done[case.kind] = root / "warehouse.duckdb"
        return done[case.kind]
    return run


def test_the_corpus_has_at_least_thirty_kinds():
    assert len({c.kind for c in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.kind)
def test_bad_input_is_named_and_the_good_rows_load(ingested, case):
    with connect(ingested(case), read_only=True) as con:
        status, reason = con.execute("SELECT status, reason FROM ops.files WHERE file_name = ?",
                                     [case.case_file]).fetchall()[0]
        held = {r for (r,) in con.execute("SELECT DISTINCT rule FROM quarantine.rows WHERE file_name = ? "
                                          "AND released_at IS NULL", [case.case_file]).fetchall()}
        staged = {feed: sorted(con.execute(f"SELECT {', '.join(f'CAST({c} AS VARCHAR)' for c in FEEDS[feed].key)} "
                                           f"FROM staging.{feed}").fetchall()) for feed in FEEDS}
        summary = summary_text(con)
        dq = data_quality(con)
        breaks = con.execute("SELECT movement_id, expected_balance_fen FROM staging.bank_continuity_breaks").fetchall()

    expected = expected_staging(case)
    assert staged == {feed: sorted(key(feed, r) for r in rs) for feed, rs in expected.items()}
    assert held == set(case.quarantine)
    if case.quarantine:
        assert status == "loaded"
        for rule in case.quarantine:
            assert rule in summary
            assert ((dq["quarantine"]["feed"] == case.feed) & (dq["quarantine"]["rule"] == rule)).any()
    elif case.rejected:
        assert status == "rejected" and case.rejected in reason
        assert f"{case.case_file}: {reason}" in summary
        shown = dq["rejected"].set_index("file_name")["reason"]
        assert case.rejected in shown[case.case_file]
    elif case.status == "duplicate":
        assert status == "duplicate"
        assert "duplicate files skipped: 1" in summary
        files = dq["files"].set_index(["feed", "status"])["files"]
        assert files[(case.feed, "duplicate")] == 1
    elif case.status == "nothing new":
        assert status == "loaded"
        assert "files with nothing new: 1" in summary
    elif case.status == "continuity break":
        assert status == "loaded"
        assert breaks == [("M3", 230050)]
        assert "bank continuity breaks: 1 in 1 supervision accounts" in summary


def test_data_quality_view_shows_continuity_breaks_and_redelivered_rows(ingested):
    case = next(c for c in CASES if c.status == "continuity break")
    with connect(ingested(case), read_only=True) as con:
        reported = con.execute("select balance_after_fen from staging.account_movements "
                               "where movement_id = 'M3'").fetchone()[0]
        assert data_quality(con)["continuity"][["breaks", "accounts", "abs_delta_fen"]].values.tolist() == [
            [1, 1, abs(reported - 230050)]]
    case = next(c for c in CASES if c.kind == "bank_file_twice_rewritten")
    with connect(ingested(case), read_only=True) as con:
        files = data_quality(con)["files"]
        redelivered = con.execute("select sum(rows_unchanged) from ops.files where feed = ?", [case.feed]).fetchone()[0]
    assert redelivered > 0
    assert files.loc[files["feed"] == case.feed, "rows_redelivered"].sum() == redelivered


def test_money_is_conserved_over_the_whole_corpus(ingested):
    """Per file: delivered = loaded + quarantined fen; per warehouse: staging holds exactly the good rows' fen."""
    money_feeds = [feed for feed in FEEDS if FEEDS[feed].amount_column]
    assert money_feeds == ["orders", "refunds", "account_movements"]
    for case in CASES:
        expected = expected_staging(case)
        with connect(ingested(case), read_only=True) as con:
            unbalanced = con.execute(
                "SELECT file_name, amount_fen_delivered, amount_fen_loaded, amount_fen_quarantined FROM ops.files "
                "WHERE status = 'loaded' AND list_contains(?, feed) AND amount_fen_delivered IS DISTINCT FROM "
                "coalesce(amount_fen_loaded, 0) + coalesce(amount_fen_quarantined, 0)", [money_feeds]).fetchall()
            assert unbalanced == [], case.kind
            for feed in money_feeds:
                column = FEEDS[feed].amount_column
                total = con.execute(f"SELECT coalesce(sum({column}), 0) FROM staging.{feed}").fetchall()[0][0]
                assert total == sum(int(r[column]) for r in expected[feed]), (case.kind, feed)
