"""Weekly warning lists: `<out>/warnings/<week>/<province>.csv|.xlsx` and `all.csv`.

A published list is a point-in-time snapshot an official may already have acted on, so it never changes.
Publishing again with identical content writes nothing; with different content (late rows changed the
indicators) it writes a complete new revision in `<week>/rev2/`, `rev3/` … and leaves the earlier ones
untouched. The CSV files are the content that is compared; each revision has a `manifest.json`.

Every province with active institutions that week gets a file, with only the header when nothing is
flagged: an official can then tell "nothing to inspect" from "the list did not arrive".
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from indicators.rules import TIER_ZH

LIST_COLUMNS = ("rank", "institution_id", "name", "county_code", "tier", "score", "reasons", "change",
                "previous_tier")
NATIONAL_COLUMNS = LIST_COLUMNS + ("province_code",)
DROP_COLUMNS = ("institution_id", "name", "county_code", "previous_tier", "reasons")
HEADERS_ZH = {
    "rank": "排名", "institution_id": "统一社会信用代码", "name": "机构名称", "county_code": "区县代码",
    "tier": "预警等级", "score": "风险评分", "reasons": "预警原因", "change": "较上周变化",
    "previous_tier": "上周等级", "province_code": "省份代码",
}
WIDTHS = {"rank": 6, "institution_id": 22, "name": 30, "county_code": 10, "tier": 9, "score": 9,
          "reasons": 90, "change": 11, "previous_tier": 9, "province_code": 9}
CHANGE_ZH = {"new": "新增", "tier_up": "升级", "tier_down": "降级", "unchanged": "不变", "dropped": "移出"}
TIER_FILL = {"red": "FFC7CE", "orange": "FFD8A8", "yellow": "FFF2A8"}


@dataclass
class PublishResult:
    week: str
    revision: int
    directory: Path
    written: bool  # False when the same content was already published
    rows: dict[str, int] = field(default_factory=dict)  # listed rows per province


def _listed(con: duckdb.DuckDBPyConnection, week: str) -> pd.DataFrame:
    return con.execute(
        """select province_code, rank, institution_id, name, county_code, tier, printf('%.4f', score) as score,
                  reasons_zh as reasons, change, previous_tier
           from marts.warnings where week = ? order by province_code, rank""", [week]).df()


def _dropped(con: duckdb.DuckDBPyConnection, week: str) -> pd.DataFrame:
    frame = con.execute(
        """select province_code, institution_id, name, county_code, previous_tier, still_active
           from marts.warning_drops where week = ? order by province_code, institution_id""", [week]).df()
    frame["reasons"] = [
        f"上周{TIER_ZH[t]}预警,本周未达预警条件" if active else f"上周{TIER_ZH[t]}预警,本周已不在活跃机构名录(停业或注销)"
        for t, active in zip(frame["previous_tier"], frame["still_active"], strict=True)]
    return frame.assign(change="dropped")


def active_provinces(con: duckdb.DuckDBPyConnection, week: str) -> list[str]:
    """Provinces with active institutions in the week: each gets a list and a report, even when quiet."""
    return [p for (p,) in con.execute(
        "select distinct province_code from marts.institution_week_indicators where week = ? order by 1",
        [week]).fetchall()]


def _csv_bytes(frame: pd.DataFrame, columns: tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for record in frame.reindex(columns=list(columns)).itertuples(index=False):
        writer.writerow(["" if pd.isna(v) else v for v in record])
    return buffer.getvalue().encode("utf-8-sig")


def render_csvs(listed: pd.DataFrame, dropped: pd.DataFrame, provinces: list[str]) -> dict[str, bytes]:
    """The content of a week's publication: one CSV per province and all.csv (listed rows, then drops)."""
    files = {f"{p}.csv": _csv_bytes(listed[listed["province_code"] == p], LIST_COLUMNS) for p in provinces}
    national = pd.concat([listed, dropped], ignore_index=True).astype({"rank": "Int64"})
    files["all.csv"] = _csv_bytes(national, NATIONAL_COLUMNS)
    return files


def _sheet(ws, frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Chinese headers, frozen header row, auto-filter, widths, tier colours, Chinese change/tier words."""
    ws.append([HEADERS_ZH[c] for c in columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for record in frame.reindex(columns=list(columns)).itertuples(index=False):
        values = dict(zip(columns, record, strict=True))
        row = []
        for name, value in values.items():
            if pd.isna(value):
                value = None
            elif name in ("tier", "previous_tier"):
                value = TIER_ZH[value]
            elif name == "change":
                value = CHANGE_ZH[value]
            elif name == "score":
                value = float(value)
            elif name == "rank":
                value = int(value)
            row.append(value)
        ws.append(row)
        if not pd.isna(values.get("tier", float("nan"))):
            ws.cell(ws.max_row, columns.index("tier") + 1).fill = PatternFill("solid", fgColor=TIER_FILL[values["tier"]])
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(ws.max_row, 1)}"
    for i, name in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(i)].width = WIDTHS[name]


def _write_xlsx(path: Path, listed: pd.DataFrame, dropped: pd.DataFrame) -> None:
    workbook = Workbook()
    _sheet(workbook.active, listed, LIST_COLUMNS)
    workbook.active.title = "预警名单"
    _sheet(workbook.create_sheet("本周移出"), dropped, DROP_COLUMNS)
    workbook.save(path)


def revisions(week_dir: Path) -> list[tuple[int, Path]]:
    """Published revisions of a week, oldest first: (1, week_dir), (2, week_dir/'rev2'), …"""
    if not (week_dir / "manifest.json").exists():
        return []
    found = [(int(p.name[3:]), p) for p in week_dir.glob("rev*") if p.name[3:].isdigit()]
    return [(1, week_dir), *sorted(found)]


def _published_csvs(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.glob("*.csv")}


def publish_week(con: duckdb.DuckDBPyConnection, out: Path, week: str) -> PublishResult:
    """Publish the week's lists under `<out>/warnings/<week>/` (or a new `revN/`); never touch what exists."""
    listed, dropped, provinces = _listed(con, week), _dropped(con, week), active_provinces(con, week)
    files = render_csvs(listed, dropped, provinces)
    rows = {p: int((listed["province_code"] == p).sum()) for p in provinces}
    week_dir = Path(out) / "warnings" / week
    published = revisions(week_dir)
    if published and _published_csvs(published[-1][1]) == files:
        return PublishResult(week, published[-1][0], published[-1][1], written=False, rows=rows)

    revision = published[-1][0] + 1 if published else 1
    target = week_dir / f"rev{revision}" if published else week_dir
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, content in files.items():
        (staging / name).write_bytes(content)
        if name != "all.csv":
            province = name[:-4]
            _write_xlsx(staging / f"{province}.xlsx", listed[listed["province_code"] == province],
                        dropped[dropped["province_code"] == province])
    manifest = {"week": week, "revision": revision, "supersedes": revision - 1 or None,
                "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "sha256": {n: hashlib.sha256(c).hexdigest() for n, c in sorted(files.items())}}
    (staging / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    if target.exists():  # revision 1 only: a folder without manifest is an interrupted, unpublished attempt
        shutil.rmtree(target)
    staging.rename(target)
    return PublishResult(week, revision, target, written=True, rows=rows)
