"""The landing folder follows the interchange standard: names, columns, types, encodings, manifests."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_contracts.feeds import BIGINT, BOOLEAN, DATE, FEED_NAMES, FEEDS, FILE_NAME_PATTERN, INTEGER, TIMESTAMPTZ


def truth_rows(out: Path, name: str) -> list[dict]:
    with (out / "truth" / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_seven_feed_folders_and_truth_beside_not_inside(tiny):
    landing = tiny / "landing"
    assert sorted(p.name for p in landing.iterdir()) == sorted(FEED_NAMES)
    assert (tiny / "truth" / "institutions.csv").exists()
    assert not list(landing.rglob("truth*")) and not list(landing.rglob("*.txt"))


def test_every_file_is_named_by_feed_and_delivery_date(tiny):
    pattern = re.compile(FILE_NAME_PATTERN)
    for feed in FEED_NAMES:
        for path in (tiny / "landing" / feed).iterdir():
            name = path.name.removesuffix(".manifest.json")
            m = pattern.match(name)
            assert m and m["feed"] == feed, path
            assert (tiny / "landing" / feed / name).exists()


def test_columns_match_the_feeds_exactly(tiny, reader):
    for feed in FEED_NAMES:
        files = reader.data_files(tiny / "landing", feed)
        assert len(files) >= 30 if feed != "account_movements" else len(files) >= 30 * 6
        for path in files:
            assert tuple(reader.read_file(path).column_names) == FEEDS[feed].column_names, path


EXPECTED_PARQUET = {BIGINT: pa.int64(), INTEGER: pa.int32(), BOOLEAN: pa.bool_(), DATE: pa.date32()}


def test_parquet_files_carry_proper_types(tiny, reader):
    files = reader.data_files(tiny / "landing", "consumptions") + [
        p for p in reader.data_files(tiny / "landing", "account_movements") if p.suffix == ".parquet"]
    assert any(p.name.startswith("account_movements") for p in files)
    for path in files:
        schema = pq.read_schema(path)
        feed = FEEDS[path.name.split("_2")[0]]
        for col in feed.columns:
            typ = schema.field(col.name).type
            if col.type == TIMESTAMPTZ:
                assert pa.types.is_timestamp(typ) and typ.tz is not None, (path, col)
            else:
                assert typ == EXPECTED_PARQUET.get(col.type, pa.string()), (path, col)


def test_csv_timestamps_carry_the_shanghai_offset_and_money_is_integer_fen(tiny, reader):
    floats = {(r["file"], int(r["row_number"])) for r in truth_rows(tiny, "bad_rows.csv") if r["kind"] == "float_money"}
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$")
    seen_float = False
    for feed in ("orders", "refunds", "account_movements", "complaints"):
        for path in reader.data_files(tiny / "landing", feed):
            if path.suffix != ".csv":
                continue
            t = reader.read_file(path).to_pydict()
            for col in FEEDS[feed].columns:
                for row, value in enumerate(t[col.name], start=1):
                    if value is None:
                        continue
                    if col.type == TIMESTAMPTZ:
                        assert stamp.match(value), (path.name, col.name, value)
                    elif col.name.endswith("_fen"):
                        if (path.name, row) in floats:
                            seen_float = True
                            assert re.match(r"^\d+\.\d\d$", value)
                        else:
                            assert re.match(r"^-?\d+$", value), (path.name, col.name, value)
    assert seen_float


def test_gb18030_bank_files_decode_to_chinese_and_others_are_utf8(tiny):
    deliveries = truth_rows(tiny, "deliveries.csv")
    gb = [d for d in deliveries if d["encoding"] == "gb18030"]
    assert {d["feed"] for d in gb} == {"account_movements"}
    assert {d["bank_code"] for d in gb} == {"103", "301", "403"}
    chinese = 0
    for d in gb:
        raw = (tiny / "landing" / "account_movements" / d["file"]).read_bytes()
        text = raw.decode("gb18030")
        if "手续费" in text:
            chinese += 1
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
    assert chinese >= 3
    boms = [d for d in deliveries if d["bom"] == "True"]
    assert boms and all((tiny / "landing" / d["feed"] / d["file"]).read_bytes()[:3] == b"\xef\xbb\xbf" for d in boms)
    for d in deliveries:
        if d["encoding"] == "utf-8":
            (tiny / "landing" / d["feed"] / d["file"]).read_bytes().decode("utf-8")


def test_manifests_match_their_files(tiny, reader):
    manifests = list((tiny / "landing").rglob("*.manifest.json"))
    feeds = {m.parent.name for m in manifests}
    assert {"account_movements", "orders", "consumptions"} <= feeds
    assert all(d["manifest"] == "True" for d in truth_rows(tiny, "deliveries.csv") if d["feed"] == "account_movements")
    for m in manifests:
        data_file = m.with_name(m.name.removesuffix(".manifest.json"))
        manifest = json.loads(m.read_text(encoding="utf-8"))
        t = reader.read_file(data_file)
        feed = FEEDS[m.parent.name]
        assert manifest["rows"] == len(t)
        assert manifest["sha256"] == hashlib.sha256(data_file.read_bytes()).hexdigest()
        if feed.amount_column:
            assert manifest["amount_fen_total"] == sum(int(v) for v in t.column(feed.amount_column).to_pylist())
        else:
            assert manifest["amount_fen_total"] is None


def test_a_bank_file_is_sometimes_delivered_twice_under_two_names(tiny):
    dups = [d for d in truth_rows(tiny, "deliveries.csv") if d["duplicate_of"]]
    assert dups
    folder = tiny / "landing" / "account_movements"
    for d in dups:
        assert d["file"] != d["duplicate_of"]
        assert (folder / d["file"]).read_bytes() == (folder / d["duplicate_of"]).read_bytes()
