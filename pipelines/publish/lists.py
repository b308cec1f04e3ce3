"""Weekly warning lists: `<out>/warnings/<week>/<province>.csv|.xlsx` and `all.csv`.

A published list is a point-in-time snapshot an official may already have acted on, so it never changes.
Each list (a province's, or the national `all.csv`) is published on its own, so that the (week, province)
partitions can run in parallel without touching each other's files. Publishing a list again with
identical CSV content writes nothing; with different content (late rows changed the indicators) it writes
that list's next revision into `<week>/rev2/`, `rev3/` … and leaves the earlier ones untouched.

`<week>/<list>.manifest.json` records a list's revisions (sha256 of every file) and the build of the week
(`ops.week_builds.built_at`) it was last published from; it is the commit point: a list file whose
revision the manifest does not name is the leftover of an interrupted run and is simply rewritten.

Every province with active institutions that week gets a file, with only the header when nothing is
flagged: an official can then tell "nothing to inspect" from "the list did not arrive".
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from indicators.rules import TIER_ZH
from pipelines.publish.files import remove_leftovers, write_atomic

NATIONAL = "all"  # the national list's name beside the province codes
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
    name: str  # province code, or NATIONAL
    revision: int
    directory: Path  # the folder of that revision
    written: bool  # False when the same content was already published
    rows: int  # listed rows (without the dropped ones)


def _listed(con: duckdb.DuckDBPyConnection, week: str, province: str | None) -> pd.DataFrame:
    return con.execute(
        """select province_code, rank, institution_id, name, county_code, tier, printf('%.4f', score) as score,
                  reasons_zh as reasons, change, previous_tier
           from marts.warnings where week = $week and ($province is null or province_code = $province)
           order by province_code, rank""", {"week": week, "province": province}).df()


def _dropped(con: duckdb.DuckDBPyConnection, week: str, province: str | None) -> pd.DataFrame:
    frame = con.execute(
        """select province_code, institution_id, name, county_code, previous_tier, still_active
           from marts.warning_drops where week = $week and ($province is null or province_code = $province)
           order by province_code, institution_id""", {"week": week, "province": province}).df()
    frame["reasons"] = [
        f"上周{TIER_ZH[t]}预警,本周未达预警条件" if active else f"上周{TIER_ZH[t]}预警,本周已不在活跃机构名录(停业或注销)"
        for t, active in zip(frame["previous_tier"], frame["still_active"], strict=True)]
    return frame.assign(change="dropped")


def active_provinces(con: duckdb.DuckDBPyConnection, week: str) -> list[str]:
    """Provinces with active institutions in the week: each gets a list and a report, even when quiet."""
    return [p for (p,) in con.execute(
        "select distinct province_code from marts.institution_week_indicators where week = ? order by 1",
        [week]).fetchall()]


def is_active(con: duckdb.DuckDBPyConnection, week: str, province: str) -> bool:
    """Whether `province` is one of `active_provinces` (a partition asks for its own: the first row answers)."""
    return con.execute("select exists (select 1 from marts.institution_week_indicators "
                       "where week = ? and province_code = ?)", [week, province]).fetchone()[0]


def _csv_bytes(frame: pd.DataFrame, columns: tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for record in frame.reindex(columns=list(columns)).itertuples(index=False):
        writer.writerow(["" if pd.isna(v) else v for v in record])
    return buffer.getvalue().encode("utf-8-sig")


def national_csv(listed: pd.DataFrame, dropped: pd.DataFrame) -> bytes:
    """all.csv: every province's listed rows, then the rows dropped since last week."""
    national = pd.concat([listed, dropped], ignore_index=True).astype({"rank": "Int64"})
    return _csv_bytes(national, NATIONAL_COLUMNS)


def _sheet(ws, frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Chinese headers, frozen header row, auto-filter, widths, tier colours, Chinese change/tier words.

    Cells are addressed by number: `ws.max_row` and `ws[n]` scan every cell written so far (quadratic)."""
    ws.append([HEADERS_ZH[c] for c in columns])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    tier_column = columns.index("tier") + 1 if "tier" in columns else None
    records = frame.reindex(columns=list(columns)).itertuples(index=False)
    for n, record in enumerate(records, start=2):
        values = dict(zip(columns, record, strict=True))
        for j, (name, value) in enumerate(values.items(), start=1):
            if pd.isna(value):
                continue
            if name in ("tier", "previous_tier"):
                value = TIER_ZH[value]
            elif name == "change":
                value = CHANGE_ZH[value]
            elif name == "score":
                value = float(value)
            elif name == "rank":
                value = int(value)
            cell = ws.cell(n, j, value)
            if isinstance(value, str):  # text stays text: a name like "=HYPERLINK(…)" must not become a formula
                cell.data_type = "s"
        if tier_column and not pd.isna(values["tier"]):
            ws.cell(n, tier_column).fill = PatternFill("solid", fgColor=TIER_FILL[values["tier"]])
    rows = len(frame) + 1
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{rows}"
    for i, name in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(i)].width = WIDTHS[name]


def _xlsx_bytes(listed: pd.DataFrame, dropped: pd.DataFrame) -> bytes:
    workbook = Workbook()
    _sheet(workbook.active, listed, LIST_COLUMNS)
    workbook.active.title = "预警名单"
    _sheet(workbook.create_sheet("本周移出"), dropped, DROP_COLUMNS)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def revision_dir(week_dir: Path, revision: int) -> Path:
    """Revision 1 lives in the week folder itself, later ones in `rev2/`, `rev3/` …"""
    return week_dir if revision == 1 else week_dir / f"rev{revision}"


def manifest_path(out: Path, week: str, name: str) -> Path:
    return Path(out) / "warnings" / week / f"{name}.manifest.json"


def read_manifest(out: Path, week: str, name: str) -> dict | None:
    path = manifest_path(out, week, name)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def newest_list(out: Path, week: str, name: str) -> Path | None:
    """The CSV of the newest published revision of a list, None when it was never published."""
    manifest = read_manifest(out, week, name)
    if not manifest:
        return None
    return revision_dir(Path(out) / "warnings" / week, manifest["revisions"][-1]["revision"]) / f"{name}.csv"


def week_builds(con: duckdb.DuckDBPyConnection) -> dict[str, datetime] | None:
    """`ops.week_builds` (when each week's warnings were last rebuilt); None where the table does not exist."""
    exists = con.execute("select count(*) from information_schema.tables "
                         "where table_schema = 'ops' and table_name = 'week_builds'").fetchone()[0]
    return dict(con.execute("select week, built_at from ops.week_builds").fetchall()) if exists else None


def is_stale(manifest: dict | None, built_at: datetime | None) -> bool:
    """Publish when never published, when the build is unknown, or when the week was rebuilt since."""
    if manifest is None or built_at is None or manifest.get("built_at") is None:
        return True
    return datetime.fromisoformat(manifest["built_at"]) < built_at


def _publish(out: Path, week: str, name: str, content: bytes, extra: Callable[[], dict[str, bytes]],
             rows: int, built_at: datetime | None) -> PublishResult:
    """Compare `<name>.csv` with the newest revision; write the next revision only when it differs."""
    week_dir = Path(out) / "warnings" / week
    if week_dir.exists():
        remove_leftovers(week_dir, name)
    manifest = read_manifest(out, week, name) or {"week": week, "list": name, "built_at": None, "revisions": []}
    newest = manifest["revisions"][-1] if manifest["revisions"] else None
    csv_name = f"{name}.csv"
    written = newest is None or newest["sha256"][csv_name] != hashlib.sha256(content).hexdigest()
    if written:
        revision = newest["revision"] + 1 if newest else 1
        files = {csv_name: content, **extra()}
        for file_name, data in files.items():
            write_atomic(revision_dir(week_dir, revision) / file_name, data)
        manifest["revisions"].append({
            "revision": revision, "rows": rows,
            "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sha256": {n: hashlib.sha256(d).hexdigest() for n, d in sorted(files.items())}})
    built = built_at.isoformat() if built_at else None
    if written or manifest["built_at"] != built:
        manifest["built_at"] = built
        write_atomic(manifest_path(out, week, name),
                     json.dumps(manifest, ensure_ascii=False, indent=2).encode("utf-8"))
    revision = manifest["revisions"][-1]["revision"]
    return PublishResult(week, name, revision, revision_dir(week_dir, revision), written, rows)


def _built_at(con: duckdb.DuckDBPyConnection, week: str) -> datetime | None:
    return (week_builds(con) or {}).get(week)


def publish_province(con: duckdb.DuckDBPyConnection, out: Path, week: str, province: str) -> PublishResult | None:
    """One province's list of the week (CSV + XLSX); None when the province had no active institution."""
    if not is_active(con, week, province):
        return None
    listed = _listed(con, week, province)
    return _publish(out, week, province, _csv_bytes(listed, LIST_COLUMNS),
                    lambda: {f"{province}.xlsx": _xlsx_bytes(listed, _dropped(con, week, province))},
                    len(listed), _built_at(con, week))


def publish_national(con: duckdb.DuckDBPyConnection, out: Path, week: str) -> PublishResult:
    """all.csv of the week: the country's listed rows plus the dropped ones."""
    listed = _listed(con, week, None)
    return _publish(out, week, NATIONAL, national_csv(listed, _dropped(con, week, None)), dict, len(listed),
                    _built_at(con, week))


def publish_week(con: duckdb.DuckDBPyConnection, out: Path, week: str) -> dict[str, PublishResult]:
    """Every list of the week, one after the other (the partitioned assets publish them one at a time)."""
    results = {p: publish_province(con, out, week, p) for p in active_provinces(con, week)}
    results[NATIONAL] = publish_national(con, out, week)
    return results


def week_lists(con: duckdb.DuckDBPyConnection, weeks: Iterable[str]) -> list[tuple[str, str]]:
    """(week, list) pairs of the weeks: every province with active institutions, then NATIONAL."""
    weeks = sorted(weeks)
    if not weeks:
        return []
    active = con.execute(
        "select distinct week, province_code from marts.institution_week_indicators "
        "where list_contains($weeks, week)", {"weeks": weeks}).fetchall()
    return sorted([*active, *((w, NATIONAL) for w in weeks)])  # NATIONAL ('all') sorts after the codes


def stale_lists(con: duckdb.DuckDBPyConnection, out: Path, weeks: Iterable[str]) -> list[tuple[str, str]]:
    """The week_lists to publish: never published, or the week was rebuilt after their publication
    (all of them without `ops.week_builds`)."""
    builds = week_builds(con) or {}
    return [(w, n) for w, n in week_lists(con, weeks) if is_stale(read_manifest(out, w, n), builds.get(w))]
