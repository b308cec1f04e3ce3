"""The landing files as one Parquet file per feed, the input of the reference SQL and of pandas.

Done once per landing, outside the timings: every delivered row with its delivery date and sequence (from
the file name), the latest delivery of each key kept (the standard's "later delivery wins"), rows whose
values do not cast dropped. No other contract rule is applied, so institutions with quarantined rows may
differ from the pipeline; the benchmark test compares the others.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import duckdb

from data_contracts.feeds import FEEDS, FILE_NAME_PATTERN

CORE_FEEDS = ("institutions", "orders", "consumptions", "refunds", "account_movements", "complaints", "evaluations")


def _delivery_files(landing: Path, feed: str) -> list[tuple[Path, str, int]]:
    pattern = re.compile(FILE_NAME_PATTERN)
    files = []
    for path in sorted((landing / feed).iterdir()) if (landing / feed).is_dir() else []:
        if (m := pattern.match(path.name)) and m["feed"] == feed:
            files.append((path, m["date"], int(m["seq"] or 0)))
    return files


def _source(path: Path, scratch: Path) -> str:
    """A relation over one delivery file; CSV is re-encoded to UTF-8 first (the standard allows GB18030)."""
    if path.suffix == ".parquet":
        return f"read_parquet('{path}')"
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    utf8 = scratch / path.name
    utf8.write_text(text, encoding="utf-8")
    return f"read_csv('{utf8}', all_varchar = true, header = true)"


def convert_landing(landing: Path, out: Path) -> dict[str, int]:
    """Write `out/<feed>.parquet` for the core feeds; returns rows delivered per feed (before dedup)."""
    scratch = out / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"memory_limit": os.environ.get("TUTORWATCH_MEMORY_LIMIT") or "4GB",
                                 "temp_directory": str(scratch)})  # spills there at national scale
    con.execute("SET TimeZone = 'Asia/Shanghai'")
    con.execute("SET enable_progress_bar = false")
    delivered = {}
    for feed in CORE_FEEDS:
        columns = FEEDS[feed].columns
        casts = ", ".join(f'try_cast("{c.name}" AS {c.type}) AS "{c.name}"' for c in columns)
        con.execute(f"CREATE OR REPLACE TEMP TABLE delivered AS SELECT {casts}, NULL::DATE AS _delivery_date, "
                    f"0 AS _seq, 0::BIGINT AS _row FROM (SELECT {', '.join(f'NULL AS {c.name}' for c in columns)}) "
                    "WHERE false")
        for path, day, seq in _delivery_files(landing, feed):
            try:
                con.execute(f"INSERT INTO delivered SELECT {casts}, strptime('{day}', '%Y%m%d')::DATE, {seq}, "
                            f"row_number() OVER () FROM {_source(path, scratch)}")
            except (duckdb.Error, UnicodeDecodeError):
                continue  # unreadable file: the pipeline rejects it whole too
        delivered[feed] = con.execute("SELECT count(*) FROM delivered").fetchone()[0]
        key = ", ".join(f'"{k}"' for k in FEEDS[feed].key)
        con.execute(f"""
            COPY (
                SELECT * EXCLUDE (_seq, _row) FROM delivered
                WHERE {' AND '.join(f'"{k}" IS NOT NULL' for k in FEEDS[feed].key)}
                QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY _delivery_date DESC, _seq DESC, _row DESC) = 1
            ) TO '{out / f'{feed}.parquet'}' (FORMAT parquet)""")
    con.close()
    shutil.rmtree(scratch)
    return delivered
