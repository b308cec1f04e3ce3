"""A tiny generated country shared by the generator tests, and a plain reader of its landing folder."""

from __future__ import annotations

import io
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from data_contracts.feeds import FEEDS, FILE_NAME_PATTERN
from tutorwatch.generator import generate

TINY = {"scale": "demo", "weeks": 30, "seed": 11, "institutions": 300, "start": "2025-05-05"}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    generate(out=out, **TINY)
    return out


def read_file(path: Path) -> pa.Table:
    """Every column as text, the way a careful reader sees the delivery (BOM and GB18030 handled)."""
    if path.suffix == ".parquet":
        return pq.read_table(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    names = text.split("\n", 1)[0].replace('"', "").split(",")
    return pacsv.read_csv(io.BytesIO(text.encode("utf-8")), convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=True, quoted_strings_can_be_null=False))


def data_files(landing: Path, feed: str) -> list[Path]:
    pattern = re.compile(FILE_NAME_PATTERN)
    return sorted(p for p in (landing / feed).iterdir() if pattern.match(p.name))


def load(landing: Path, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB table per feed of all its deliveries, typed per the feed, with _file, _row and _bad.

    `_bad` is the planted breach from truth/bad_rows.csv; the duplicate file of a bank delivery is skipped.
    """
    con = con or duckdb.connect()
    con.execute("SET TimeZone='Asia/Shanghai'")
    truth = landing.parent / "truth"
    con.execute(f"CREATE TABLE bad_rows AS SELECT * FROM read_csv('{truth / 'bad_rows.csv'}', all_varchar=true)")
    con.execute(f"CREATE TABLE deliveries AS SELECT * FROM read_csv('{truth / 'deliveries.csv'}', all_varchar=true)")
    duplicates = {r[0] for r in con.execute("SELECT file FROM deliveries WHERE duplicate_of <> ''").fetchall()}
    for feed in FEEDS:
        selects = []
        for path in data_files(landing, feed):
            if path.name in duplicates:
                continue
            t = read_file(path)
            t = t.append_column("_file", pa.array([path.name] * len(t)))
            t = t.append_column("_row", pa.array(range(1, len(t) + 1), pa.int64()))
            t = t.append_column("_delivery", pa.array([re.match(FILE_NAME_PATTERN, path.name)["date"]] * len(t)))
            view = f"f{len(selects)}_{feed}"
            con.register(view, t)
            cols = ", ".join(f'TRY_CAST("{c.name}" AS {c.type}) AS "{c.name}"' for c in FEEDS[feed].columns)
            selects.append(f"SELECT {cols}, _file, _row, strptime(_delivery, '%Y%m%d')::DATE AS _delivery FROM {view}")
        con.execute(f"""CREATE TABLE {feed} AS SELECT r.*, b.kind AS _bad
            FROM ({" UNION ALL ".join(selects)}) r
            LEFT JOIN bad_rows b ON b.file = r._file AND b.row_number::BIGINT = r._row""")
    return con


@pytest.fixture(scope="session")
def reader():
    """The plain reader as a fixture (test modules here are not a package)."""
    return type("Reader", (), {"read_file": staticmethod(read_file), "data_files": staticmethod(data_files)})


@pytest.fixture(scope="session")
def db(tiny) -> duckdb.DuckDBPyConnection:
    return load(tiny / "landing")
