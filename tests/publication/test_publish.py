"""Published lists and reports on hand-made marts: BOM, xlsx, PDF text, plotly once, immutable revisions."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil

import pytest
from publication_fixtures import add_rows
from openpyxl import load_workbook
from pypdf import PdfReader

from indicators.rules import build_warnings
from pipelines.publish import newest_list, publish_province, publish_week, stale_lists, write_reports
from pipelines.publish.files import write_atomic

A, B, C, D = ("91440104MA5AAAAA1A", "91440104MA5BBBBB1B", "91440104MA5CCCCC1C", "91110105MA5DDDDD1D")
W09, W10 = "2026-W09", "2026-W10"


@pytest.fixture
def marts(warehouse):
    """W09: A orange, C orange. W10: A red (tier_up), B red (new), C quiet (dropped); Beijing has D, quiet."""
    add_rows(warehouse, [
        dict(institution_id=A, week=W09, province_code="44", overdue_refunds=1),
        dict(institution_id=C, week=W09, province_code="44", overdue_refunds=1),
        dict(institution_id=A, week=W10, province_code="44", coverage_ratio=0.6, name="广州甲培训中心"),
        dict(institution_id=B, week=W10, province_code="44", licence_days_to_expiry=-10, name="广州乙培训学校"),
        dict(institution_id=C, week=W10, province_code="44", overdue_refunds=0),
        dict(institution_id=D, week=W10, province_code="11", coverage_ratio=1.5),
    ])
    build_warnings(warehouse)
    return warehouse


def read_csv(path):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def test_lists_per_province_and_national_with_changes(marts, tmp_path):
    results = publish_week(marts, tmp_path, W10)
    folder = tmp_path / "warnings" / W10
    assert {n: (r.written, r.revision, r.rows) for n, r in results.items()} == {
        "11": (True, 1, 0), "44": (True, 1, 2), "all": (True, 1, 2)}
    guangdong = read_csv(folder / "44.csv")
    assert [r["rank"] for r in guangdong] == ["1", "2"]  # rank order (the ranking itself: test_publication_rules)
    assert [r["institution_id"] for r in guangdong] == [i for (i,) in marts.execute(
        "select institution_id from marts.warnings where week = ? and province_code = '44' order by rank", [W10]
    ).fetchall()]
    by_id = {r["institution_id"]: r for r in guangdong}
    assert {i: (r["tier"], r["change"]) for i, r in by_id.items()} == {B: ("red", "new"), A: ("red", "tier_up")}
    assert "办学许可证距到期 -10 天" in by_id[B]["reasons"] and "监管资金覆盖率低于 0.9" in by_id[A]["reasons"]
    assert read_csv(folder / "11.csv") == []  # a province with nothing flagged still gets its (empty) list
    national = {r["institution_id"]: r for r in read_csv(folder / "all.csv")}
    assert set(national) == {A, B, C}
    assert (national[C]["change"], national[C]["previous_tier"], national[C]["tier"]) == ("dropped", "orange", "")
    assert national[A]["province_code"] == "44" and national[A]["previous_tier"] == "orange"


def test_a_province_without_active_institutions_gets_no_list(marts, tmp_path):
    assert publish_province(marts, tmp_path, W10, "31") is None
    assert publish_province(marts, tmp_path, W09, "11") is None  # Beijing's D is active in W10 only
    assert not (tmp_path / "warnings" / W10 / "31.csv").exists()


def test_manifest_records_each_file_of_the_revision(marts, tmp_path):
    publish_week(marts, tmp_path, W10)
    folder = tmp_path / "warnings" / W10
    manifest = json.loads((folder / "44.manifest.json").read_text(encoding="utf-8"))
    assert [r["revision"] for r in manifest["revisions"]] == [1]
    assert manifest["revisions"][0]["sha256"] == {
        n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in ("44.csv", "44.xlsx")}
    assert manifest["revisions"][0]["rows"] == 2 and manifest["built_at"] is None  # no ops.week_builds here
    assert newest_list(tmp_path, W10, "44") == folder / "44.csv"
    assert newest_list(tmp_path, W09, "44") is None


def test_xlsx_has_chinese_headers_frozen_header_and_filter_and_matches_all_csv(marts, tmp_path):
    publish_week(marts, tmp_path, W10)
    folder = tmp_path / "warnings" / W10
    sheet = load_workbook(folder / "44.xlsx")["预警名单"]
    header = [c.value for c in sheet[1]]
    assert header[:7] == ["排名", "统一社会信用代码", "机构名称", "区县代码", "预警等级", "风险评分", "预警原因"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1:")
    assert sheet.column_dimensions["G"].width >= 60
    national = {r["institution_id"]: r for r in read_csv(folder / "all.csv") if r["province_code"] == "44" and r["rank"]}
    rows = [dict(zip(header, (c.value for c in row), strict=True)) for row in sheet.iter_rows(min_row=2)]
    assert {r["统一社会信用代码"]: (r["排名"], r["预警等级"], round(r["风险评分"], 4), r["预警原因"]) for r in rows} == {
        i: (int(r["rank"]), {"red": "红色", "orange": "橙色"}[r["tier"]], float(r["score"]), r["reasons"])
        for i, r in national.items()}
    dropped = load_workbook(folder / "44.xlsx")["本周移出"]
    assert [c.value for c in dropped[2]][:2] == [C, "机构C1C"]


def test_xlsx_keeps_a_name_that_looks_like_a_formula_as_text(marts, tmp_path):
    hostile = '=HYPERLINK("http://example.invalid","点击")'
    marts.execute("update marts.warnings set name = ? where institution_id = ?", [hostile, A])
    publish_province(marts, tmp_path, W10, "44")
    sheet = load_workbook(tmp_path / "warnings" / W10 / "44.xlsx")["预警名单"]
    [cell] = [row[2] for row in sheet.iter_rows(min_row=2) if row[1].value == A]
    assert (cell.value, cell.data_type) == (hostile, "s")


def test_republishing_identical_content_changes_nothing(marts, tmp_path):
    publish_week(marts, tmp_path, W10)
    folder = tmp_path / "warnings" / W10
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    again = publish_week(marts, tmp_path, W10)
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert {n: (r.written, r.revision) for n, r in again.items()} == {
        "11": (False, 1), "44": (False, 1), "all": (False, 1)}
    assert after == before


def test_late_rows_make_a_new_revision_of_the_changed_lists_only(marts, tmp_path):
    publish_week(marts, tmp_path, W10)
    folder = tmp_path / "warnings" / W10
    original = {p.name: p.read_bytes() for p in folder.glob("*.*") if not p.name.endswith(".manifest.json")}
    marts.execute("update marts.institution_week_indicators set coverage_ratio = 0.2 where institution_id = ?", [D])
    build_warnings(marts)
    second = publish_week(marts, tmp_path, W10)
    assert {n: (r.written, r.revision) for n, r in second.items()} == {
        "11": (True, 2), "44": (False, 1), "all": (True, 2)}  # Guangdong's list did not change
    assert second["11"].directory == folder / "rev2"
    assert {p.name: p.read_bytes() for p in folder.glob("*.*") if not p.name.endswith(".manifest.json")} == original
    assert {p.name for p in (folder / "rev2").iterdir()} == {"11.csv", "11.xlsx", "all.csv"}
    assert [r["institution_id"] for r in read_csv(folder / "rev2" / "11.csv")] == [D]
    assert newest_list(tmp_path, W10, "11") == folder / "rev2" / "11.csv"
    assert [r["revision"] for r in json.loads((folder / "11.manifest.json").read_text())["revisions"]] == [1, 2]
    assert not any(r.written for r in publish_week(marts, tmp_path, W10).values())  # same late content: no rev3
    assert not (folder / "rev3").exists()


def test_leftovers_of_a_killed_run_are_replaced_and_leave_no_temp_files(marts, tmp_path):
    """A file without a manifest entry was never published: the rerun writes the real content over it."""
    folder = tmp_path / "warnings" / W10
    folder.mkdir(parents=True)
    (folder / "44.csv").write_bytes(b"half a li")
    (folder / ".44.xlsx.abc.partial").write_bytes(b"junk")  # a temp file the kill left behind
    (folder / "rev2").mkdir()
    (folder / "rev2" / ".44.csv.def.partial").write_bytes(b"junk")
    (folder / ".11.csv.ghi.partial").write_bytes(b"Beijing's, being written by another partition")
    result = publish_province(marts, tmp_path, W10, "44")
    assert (result.written, result.revision) == (True, 1)
    assert {r["institution_id"] for r in read_csv(folder / "44.csv")} == {A, B}
    assert sorted(p.name for p in folder.iterdir()) == [".11.csv.ghi.partial", "44.csv", "44.manifest.json",
                                                        "44.xlsx", "rev2"]
    assert not any((folder / "rev2").iterdir())


def test_a_failed_write_keeps_the_previous_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "44.csv"
    write_atomic(target, b"old list")

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr("pipelines.publish.files.os.fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, b"new list that never lands")
    assert target.read_bytes() == b"old list"
    assert [p.name for p in tmp_path.iterdir()] == ["44.csv"]


def test_stale_lists_follow_the_week_builds(marts, tmp_path):
    """Without ops.week_builds every list is stale; with it, only weeks rebuilt after their publication."""
    marts.execute("drop table if exists ops.week_builds")
    everything = [(W09, "44"), (W09, "all"), (W10, "11"), (W10, "44"), (W10, "all")]
    assert stale_lists(marts, tmp_path, [W09, W10]) == everything
    publish_week(marts, tmp_path, W09)
    publish_week(marts, tmp_path, W10)
    assert stale_lists(marts, tmp_path, [W09, W10]) == everything  # build time unknown: publish again

    marts.execute("create table ops.week_builds (week varchar primary key, built_at timestamptz)")
    marts.execute("insert into ops.week_builds values (?, '2026-03-09 08:00:00+08'), (?, '2026-03-16 08:00:00+08')",
                  [W09, W10])
    assert stale_lists(marts, tmp_path, [W09, W10]) == everything  # published before the builds were known
    publish_week(marts, tmp_path, W09)
    publish_week(marts, tmp_path, W10)
    assert stale_lists(marts, tmp_path, [W09, W10]) == []
    assert json.loads((tmp_path / "warnings" / W10 / "44.manifest.json").read_text())["built_at"].startswith(
        "2026-03-16T08:00:00")
    marts.execute("update ops.week_builds set built_at = '2026-03-16 09:00:00+08' where week = ?", [W10])
    assert stale_lists(marts, tmp_path, [W09, W10]) == [(W10, "11"), (W10, "44"), (W10, "all")]
    assert stale_lists(marts, tmp_path, [W09]) == [] and stale_lists(marts, tmp_path, []) == []


def test_reports_html_embeds_plotly_once_and_pdf_text_matches_the_list(marts, tmp_path):
    if shutil.which("fc-list") is None:
        pytest.skip("fontconfig missing")
    publish_week(marts, tmp_path, W10)
    files = write_reports(marts, tmp_path, W10)
    folder = tmp_path / "reports" / W10
    assert {p.name for p in files} == {"national.html", "11.html", "44.html", "11.pdf", "44.pdf"}
    for name in ("national.html", "44.html"):
        html = (folder / name).read_text(encoding="utf-8")
        assert html.count("plotly.js v") == 1  # the bundle's licence banner
        assert html.count("Plotly.newPlot(") == 4
        assert "预警机构数" in html
    text = "".join("".join(page.extract_text() for page in PdfReader(folder / "44.pdf").pages).split())
    assert "广东省校外培训机构预收费风险预警周报" in text
    listed = [r for r in read_csv(tmp_path / "warnings" / W10 / "all.csv") if r["province_code"] == "44" and r["rank"]]
    assert len(listed) == 2
    for row in listed:
        assert row["institution_id"] in text and row["name"] in text
    assert "红色预警2家" in text and "本周移出1家" in text


def test_an_unchanged_report_is_not_rendered_again_and_a_changed_one_is(marts, tmp_path):
    if shutil.which("fc-list") is None:
        pytest.skip("fontconfig missing")
    from pipelines.publish import write_province_report

    folder = tmp_path / "reports" / W10
    write_province_report(marts, tmp_path, W10, "44")
    first = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()}
    assert set(first) == {"44.html", "44.pdf"}
    write_province_report(marts, tmp_path, W10, "44")  # same warnings: both files kept as they are
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir()} == first

    (folder / "44.pdf").unlink()  # e.g. written earlier without PDFs: the missing PDF is made
    write_province_report(marts, tmp_path, W10, "44")
    assert (folder / "44.pdf").read_bytes().startswith(b"%PDF")

    marts.execute("update marts.warnings set name = '广州丙培训中心' where institution_id = ? and week = ?", [A, W10])
    write_province_report(marts, tmp_path, W10, "44")
    text = "".join("".join(page.extract_text() for page in PdfReader(folder / "44.pdf").pages).split())
    assert "广州丙培训中心" in text and "广州丙培训中心" in (folder / "44.html").read_text(encoding="utf-8")
