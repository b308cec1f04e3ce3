"""Turn the simulated rows into delivered files: one per feed (per bank) and week, with the standard's quirks.

Each delivery re-sends the tail of the previous one, some are UTF-8 with a BOM, some bank files are
GB18030, bank files (and orders, consumptions) carry a manifest, and a bank sometimes delivers the
same file twice under two names. Rows are read back per delivery from the chunks' part files, so
memory stays bounded by one week of one feed.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from data_contracts.feeds import BIGINT, BOOLEAN, DATE, FEEDS, INTEGER, MANIFEST_SUFFIX, REPORTING_TZ, TIMESTAMPTZ, Feed
from tutorwatch.generator.calendar import Calendar, iso_date
from tutorwatch.generator.institutions import BANKS
from tutorwatch.generator.scales import Scale
from tutorwatch.generator.tables import TIME_COLUMN, table

PLATFORM_MANIFESTS = ("orders", "consumptions")
BOM_SHARE = 0.25
DUPLICATE_FILE_SHARE = 0.03
UTC_OFFSET = 8 * 3600


@dataclass
class LandingLog:
    deliveries: list[dict] = field(default_factory=list)
    bad_rows: list[dict] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)


def write_part(tmp: Path, feed: str, part: int, t: pa.Table) -> None:
    folder = tmp / feed
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(t.sort_by("_dlv"), folder / f"part-{part:05d}.parquet", row_group_size=65_536)


def write_landing(tmp: Path, landing: Path, cal: Calendar, scale: Scale, platform_days: np.ndarray,
                  rng: np.random.Generator) -> LandingLog:
    log = LandingLog()
    for feed in FEEDS.values():
        folder = landing / feed.name
        folder.mkdir(parents=True, exist_ok=True)
        weekly = _weekly_reader(tmp / feed.name)
        previous: dict[str | None, pa.Table] = {}
        for week in range(cal.weeks):
            for bank, part in _groups(feed, weekly(week)):
                part = _resend_tail(feed, previous.get(bank), _sorted(feed, part), rng)
                previous[bank] = part
                _deliver(feed, bank, week, part, folder, cal, scale, platform_days, rng, log)
    return log


IN_MEMORY_ROWS = 3_000_000


def _weekly_reader(folder: Path):
    """week -> that delivery's rows: a small feed is read once, a large one week by week from the parts."""
    if not folder.exists():
        return lambda week: None
    parts = pads.dataset(folder, format="parquet")
    if parts.count_rows() > IN_MEMORY_ROWS:
        return lambda week: parts.to_table(filter=pc.field("_dlv") == week)
    rows = parts.to_table().sort_by("_dlv")
    dlv = rows.column("_dlv").to_numpy()

    def week_rows(week: int) -> pa.Table:
        lo, hi = np.searchsorted(dlv, [week, week + 1])
        return rows.slice(lo, hi - lo)

    return week_rows


def _groups(feed: Feed, rows: pa.Table | None):
    if not feed.is_bank:
        yield None, rows if rows is not None else _empty(feed)
        return
    if rows is None:
        return
    for bank in BANKS:
        part = rows.filter(pc.field("bank_code") == bank)
        if len(part):
            yield bank, part


def _empty(feed: Feed) -> pa.Table:
    return table(feed, {c.name: [] for c in feed.columns}, np.array([], dtype=np.int32))


def _sorted(feed: Feed, t: pa.Table) -> pa.Table:
    return t.sort_by([(TIME_COLUMN[feed.name], "ascending"), (feed.key[-1], "ascending")])


def _key(feed: Feed, t: pa.Table) -> pa.Array:
    cols = [pc.cast(t.column(k), pa.string()) for k in feed.key]
    return pc.binary_join_element_wise(*cols, "|") if len(cols) > 1 else cols[0]


def _resend_tail(feed: Feed, prev: pa.Table | None, part: pa.Table, rng: np.random.Generator) -> pa.Table:
    """Put the tail of the previous delivery (identical rows) in front, unless this delivery updates those keys."""
    if prev is None or not len(prev):
        return part
    good = prev.filter(pc.is_null(prev.column("_bad")))
    tail = good.slice(max(0, len(good) - int(np.ceil(len(good) * rng.uniform(0.01, 0.05)))))
    tail = tail.filter(pc.invert(pc.is_in(_key(feed, tail), value_set=_key(feed, part))))
    return pa.concat_tables([tail, part])


def _deliver(feed: Feed, bank: str | None, week: int, t: pa.Table, folder: Path, cal: Calendar, scale: Scale,
             platform_days: np.ndarray, rng: np.random.Generator, log: LandingLog) -> None:
    if bank is None:
        day, suffix = int(platform_days[week]), ""
        parquet = feed.name in scale.parquet_feeds
    else:
        offset = BANKS[bank][2]
        same_day = sorted(b for b, v in BANKS.items() if v[2] == offset)
        day, suffix = cal.first_day + 7 * (week + 1) + offset, f"_{same_day.index(bank) + 1}"
        parquet = bank in scale.parquet_banks
    stamp = iso_date(day).strftime("%Y%m%d")
    name = f"{feed.name}_{stamp}{suffix}.{'parquet' if parquet else 'csv'}"
    gb18030 = bank is not None and BANKS[bank][1] and not parquet
    bom = not parquet and not gb18030 and rng.random() < BOM_SHARE
    data = _parquet_bytes(feed, t) if parquet else _csv_bytes(feed, t, gb18030, bom)
    with_manifest = feed.is_bank or feed.name in PLATFORM_MANIFESTS
    names = [name]
    if bank is not None and rng.random() < DUPLICATE_FILE_SHARE:
        names.append(name.replace(suffix + ".", f"_{10 + same_day.index(bank)}."))
    for n in names:
        (folder / n).write_bytes(data)
        if with_manifest:
            (folder / f"{n}{MANIFEST_SUFFIX}").write_text(json.dumps(_manifest(feed, t, data)), encoding="utf-8")
        log.deliveries.append({
            "file": n, "feed": feed.name, "bank_code": bank or "", "delivery_date": iso_date(day).isoformat(),
            "format": "parquet" if parquet else "csv",
            "encoding": "gb18030" if gb18030 else ("" if parquet else "utf-8"),
            "bom": bom, "rows": len(t), "manifest": with_manifest, "duplicate_of": "" if n == name else name,
        })
    bad = t.column("_bad").to_pylist()
    log.bad_rows += [{"feed": feed.name, "file": name, "row_number": i + 1, "kind": k} for i, k in enumerate(bad) if k]
    log.rows[feed.name] = log.rows.get(feed.name, 0) + len(t)


def _manifest(feed: Feed, t: pa.Table, data: bytes) -> dict:
    total = int(pc.sum(t.column(feed.amount_column)).as_py() or 0) if feed.amount_column else None
    return {"rows": len(t), "amount_fen_total": total, "sha256": hashlib.sha256(data).hexdigest()}


def _csv_bytes(feed: Feed, t: pa.Table, gb18030: bool, bom: bool) -> bytes:
    cols = {}
    for c in feed.columns:
        a = t.column(c.name)
        if c.type == TIMESTAMPTZ:
            a = pc.binary_join_element_wise(pc.strftime(a.cast(pa.timestamp("s")), "%Y-%m-%dT%H:%M:%S"), "+08:00", "")
        elif c.type == DATE:
            a = pc.strftime(a.cast(pa.int32()).cast(pa.date32()), "%Y-%m-%d")
        cols[c.name] = a
    floats = np.flatnonzero(np.array(t.column("_bad").to_pylist(), dtype=object) == "float_money")
    if len(floats):  # money written in yuan with decimals: a planted breach
        values = [None if v is None else str(v) for v in cols[feed.amount_column].to_pylist()]
        for i in floats:
            values[i] = f"{int(values[i]) / 100:.2f}"
        cols[feed.amount_column] = pa.array(values, pa.string())
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(cols), buf)
    data = buf.getvalue()
    if gb18030:
        return data.decode("utf-8").encode("gb18030")
    return (b"\xef\xbb\xbf" + data) if bom else data


PARQUET_TYPES = {BIGINT: pa.int64(), INTEGER: pa.int32(), BOOLEAN: pa.bool_()}


def _parquet_bytes(feed: Feed, t: pa.Table) -> bytes:
    cols = {}
    for c in feed.columns:
        a = t.column(c.name)
        if c.type == TIMESTAMPTZ:
            a = pc.subtract(a, UTC_OFFSET).cast(pa.timestamp("s", tz=REPORTING_TZ))
        elif c.type == DATE:
            a = a.cast(pa.int32()).cast(pa.date32())
        else:
            a = a.cast(PARQUET_TYPES.get(c.type, pa.string()))
        cols[c.name] = a
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    return buf.getvalue()
