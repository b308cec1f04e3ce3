"""Weekly reports: `<out>/reports/<week>/national.html`, `<province>.html` and `<province>.pdf`.

The HTML reports are interactive plotly pages, self-contained: plotly.js is embedded once per file (with
the first chart) so they open on an office PC without internet. WeasyPrint does not run JavaScript and a
static plotly export would need kaleido and a browser, so the PDF draws its bar charts as plain SVG and
shows the trends as tables; fonts come from Debian's fonts-noto-cjk and are embedded by WeasyPrint.

Reports describe the current state of `marts.warnings`; they are rewritten whenever it changed (unlike the
lists, which are immutable snapshots); a province report whose page would be identical is not rendered again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from datetime import date, timedelta
from html import escape
from pathlib import Path

import duckdb
import pandas as pd
import plotly.graph_objects as go

from data_contracts.regions import province_name_zh
from indicators import registry
from indicators.rules import TIER_ZH
from pipelines.publish.files import remove_leftovers, write_atomic
from pipelines.publish.lists import CHANGE_ZH, active_provinces, is_active

SQL_DIR = Path(__file__).resolve().parent / "sql"
TREND_WEEKS = 12
TOP_ROWS = 30
TIERS = ("red", "orange", "yellow")
TIER_COLOURS = {"red": "#d62728", "orange": "#ff7f0e", "yellow": "#e8c120"}
FONT = '"Noto Sans CJK SC", "Noto Sans CJK", sans-serif'
CSS = f"""
body {{ font-family: {FONT}; margin: 24px; color: #222; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 17px; margin-top: 28px; }}
table {{ border-collapse: collapse; width: 100%; font-size: 12px; table-layout: fixed; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }}
th {{ background: #f0f0f0; }}
.cards span {{ display: inline-block; margin: 0 18px 8px 0; padding: 6px 10px; background: #f6f6f6; }}
.red {{ color: #d62728; }} .orange {{ color: #e06c00; }} .yellow {{ color: #a88a00; }}
@page {{ size: A4 landscape; margin: 14mm; }}
"""


@dataclass
class ReportData:
    week: str
    province: str | None
    counts: pd.DataFrame  # area, tier, listed
    trend: pd.DataFrame  # week, tier, listed
    money: pd.DataFrame  # week, active_institutions, prepaid_liability_fen, supervised_balance_fen
    reasons: pd.DataFrame  # reason, listed
    rows: pd.DataFrame  # the most urgent listed rows
    dropped: int

    @property
    def title(self) -> str:
        scope = "全国" if self.province is None else province_name_zh(self.province)
        return f"{scope}校外培训机构预收费风险预警周报 {self.week}"


def _query(con: duckdb.DuckDBPyConnection, name: str, params: dict) -> pd.DataFrame:
    sql = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
    return con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).df()


def _first_week(week: str) -> str:
    monday = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
    return (monday - timedelta(weeks=TREND_WEEKS - 1)).strftime("%G-W%V")


def _reason_label(item: dict) -> str:
    try:
        return registry.by_name(item["indicator"]).name_zh
    except KeyError:
        return item["indicator"]


def report_data(con: duckdb.DuckDBPyConnection, week: str, province: str | None = None) -> ReportData:
    params = {"week": week, "province": province, "first_week": _first_week(week)}
    listed = con.execute(
        """select province_code, county_code, rank, institution_id, name, tier, score, change, reasons_zh, reasons
           from marts.warnings where week = $week and ($province is null or province_code = $province)
           order by case tier when 'red' then 3 when 'orange' then 2 else 1 end desc, score desc, institution_id""",
        {"week": week, "province": province}).df()
    items = [i for r in listed["reasons"] for i in json.loads(r) if i["rule"] != "model_contribution" and i["indicator"] != "score"]
    reasons = (pd.Series([_reason_label(i) for i in items], dtype="object").value_counts()
               .rename_axis("reason").reset_index(name="listed").head(10))
    dropped = con.execute(
        "select count(*) from marts.warning_drops where week = $week and ($province is null or province_code = $province)",
        {"week": week, "province": province}).fetchone()[0]
    counts = _query(con, "report_counts", params)
    if province is None:  # officials read province names, not codes
        counts["area"] = counts["area"].map(province_name_zh)
    return ReportData(week, province, counts, _query(con, "report_trend", params),
                      _query(con, "report_money", params), reasons, listed.head(TOP_ROWS), dropped)


def _yuan_10k(fen: pd.Series) -> pd.Series:
    """Display only: whole fen to 万元 (10,000 yuan) for the charts."""
    return fen / 1_000_000


def figures(data: ReportData) -> list[tuple[str, go.Figure]]:
    area_label = "省份" if data.province is None else "区县"
    by_area = go.Figure([go.Bar(name=TIER_ZH[t], marker_color=TIER_COLOURS[t],
                                x=data.counts.loc[data.counts["tier"] == t, "area"],
                                y=data.counts.loc[data.counts["tier"] == t, "listed"]) for t in TIERS])
    by_area.update_layout(barmode="stack", xaxis_title=area_label, yaxis_title="预警机构数", xaxis_type="category",
                          xaxis_categoryorder="total descending")
    trend = go.Figure([go.Scatter(name=TIER_ZH[t], mode="lines+markers", line_color=TIER_COLOURS[t],
                                  x=data.trend.loc[data.trend["tier"] == t, "week"],
                                  y=data.trend.loc[data.trend["tier"] == t, "listed"]) for t in TIERS])
    trend.update_layout(xaxis_title="周", yaxis_title="预警机构数")
    money = go.Figure([
        go.Scatter(name="预收费未消课余额", mode="lines+markers", x=data.money["week"],
                   y=_yuan_10k(data.money["prepaid_liability_fen"])),
        go.Scatter(name="监管账户余额", mode="lines+markers", x=data.money["week"],
                   y=_yuan_10k(data.money["supervised_balance_fen"])),
    ])
    money.update_layout(xaxis_title="周", yaxis_title="万元")
    reasons = go.Figure(go.Bar(orientation="h", x=data.reasons["listed"][::-1], y=data.reasons["reason"][::-1],
                               marker_color="#4c72b0"))
    reasons.update_layout(xaxis_title="涉及机构数")
    return [(f"各{area_label}预警机构数(按等级)", by_area), ("近12周预警趋势", trend),
            ("预收费未消课余额与监管账户余额", money), ("主要预警原因", reasons)]


def _cards(data: ReportData) -> str:
    counts = data.counts.groupby("tier")["listed"].sum()
    latest = data.money.iloc[-1] if len(data.money) else None
    cards = [f'<span class="{t}">{TIER_ZH[t]}预警 {int(counts.get(t, 0))} 家</span>' for t in TIERS]
    cards.append(f"<span>本周移出 {data.dropped} 家</span>")
    if latest is not None:
        cards += [f"<span>活跃机构 {int(latest['active_institutions'])} 家</span>",
                  f"<span>预收费未消课余额 {latest['prepaid_liability_fen'] / 100:,.0f} 元</span>",
                  f"<span>监管账户余额 {latest['supervised_balance_fen'] / 100:,.0f} 元</span>"]
    return '<div class="cards">' + "".join(cards) + "</div>"


def _table(frame: pd.DataFrame, headers: dict[str, str], widths: dict[str, int] | None = None) -> str:
    """A fixed-layout table (WeasyPrint lays out auto tables many times slower); widths in percent."""
    head = "".join(f'<th style="width:{(widths or {}).get(c, 100 // len(headers))}%">{escape(h)}</th>'
                   for c, h in headers.items())
    body = "".join("<tr>" + "".join(f"<td>{escape('' if pd.isna(v) else str(v))}</td>" for v in row) + "</tr>"
                   for row in frame[list(headers)].itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _list_table(data: ReportData) -> str:
    rows = data.rows.assign(tier=data.rows["tier"].map(TIER_ZH), change=data.rows["change"].map(CHANGE_ZH),
                            score=data.rows["score"].map("{:.2f}".format))
    return _table(rows, {"province_code": "省份", "county_code": "区县", "institution_id": "统一社会信用代码",
                         "name": "机构名称", "tier": "等级", "score": "评分", "change": "变化",
                         "reasons_zh": "预警原因"},
                  {"province_code": 5, "county_code": 7, "institution_id": 16, "name": 14, "tier": 5, "score": 5,
                   "change": 5, "reasons_zh": 40})


def _page(data: ReportData, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(data.title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{escape(data.title)}</h1>{_cards(data)}{body}"
            f"<h2>预警名单(前{TOP_ROWS}名)</h2>{_list_table(data)}</body></html>")


def render_html(data: ReportData) -> str:
    """Interactive report: plotly.js inline with the first chart only."""
    charts = "".join(
        f"<h2>{escape(title)}</h2>"
        + fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"chart-{i}", default_height="420px")
        for i, (title, fig) in enumerate(figures(data)))
    return _page(data, charts)


def svg_bars(labels: list[str], segments: list[dict[str, float]], colours: dict[str, str], width: int = 640) -> str:
    """A horizontal (stacked) bar chart as inline SVG, for the PDF."""
    bar, gap, left = 16, 6, 150
    total = max([sum(s.values()) for s in segments] + [1])
    height = len(labels) * (bar + gap) + gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family=\'{FONT}\' font-size="11">']
    for i, (label, segment) in enumerate(zip(labels, segments, strict=True)):
        y, x = gap + i * (bar + gap), left
        parts.append(f'<text x="{left - 6}" y="{y + bar - 4}" text-anchor="end">{escape(label)}</text>')
        for key, value in segment.items():
            w = (width - left - 40) * value / total
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colours[key]}"/>')
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar - 4}">{sum(segment.values()):g}</text>')
    return "".join(parts) + "</svg>"


def render_pdf_html(data: ReportData) -> str:
    """Static report for WeasyPrint: SVG bars and tables, no JavaScript."""
    areas = sorted(data.counts["area"].unique())
    pivot = data.counts.pivot_table(index="area", columns="tier", values="listed", aggfunc="sum", fill_value=0)
    by_area = svg_bars(areas, [{t: float(pivot.loc[a].get(t, 0)) for t in TIERS} for a in areas], TIER_COLOURS)
    reasons = svg_bars(list(data.reasons["reason"]), [{"n": float(n)} for n in data.reasons["listed"]],
                       {"n": "#4c72b0"})
    trend = data.trend.pivot_table(index="week", columns="tier", values="listed", aggfunc="sum", fill_value=0)
    trend = trend.reindex(columns=list(TIERS), fill_value=0).reset_index()
    money = data.money.assign(
        liability=(data.money["prepaid_liability_fen"] / 100).map("{:,.0f}".format),
        balance=(data.money["supervised_balance_fen"] / 100).map("{:,.0f}".format))
    body = (f"<h2>各{'省份' if data.province is None else '区县'}预警机构数(按等级)</h2>{by_area}"
            f"<h2>主要预警原因</h2>{reasons}"
            f"<h2>近12周预警趋势</h2>"
            + _table(trend, {"week": "周", "red": "红色", "orange": "橙色", "yellow": "黄色"})
            + "<h2>预收费未消课余额与监管账户余额(元)</h2>"
            + _table(money, {"week": "周", "active_institutions": "活跃机构", "liability": "预收费未消课余额",
                             "balance": "监管账户余额"}))
    return _page(data, body)


def _folder(out: Path, week: str) -> Path:
    return Path(out) / "reports" / week


def _clean(path: Path) -> None:
    if path.parent.exists():
        remove_leftovers(path.parent, path.stem)


def write_national_report(con: duckdb.DuckDBPyConnection, out: Path, week: str) -> Path:
    """`<out>/reports/<week>/national.html`."""
    path = _folder(out, week) / "national.html"
    _clean(path)
    write_atomic(path, render_html(report_data(con, week)).encode("utf-8"))
    return path


@cache
def _font_config():
    """One font configuration per process: each PDF built its own (7 % of a province PDF's time)."""
    from weasyprint.text.fonts import FontConfiguration  # heavy import, only where PDFs are made

    return FontConfiguration()


def _pdf_bytes(html: str) -> bytes:
    from weasyprint import HTML

    return HTML(string=html).write_pdf(font_config=_font_config())


def write_province_report(con: duckdb.DuckDBPyConnection, out: Path, week: str, province: str,
                          pdf: bool = True) -> list[Path]:
    """`<province>.html` and (with `pdf`) `<province>.pdf`; nothing when the province had no active institution.

    A report whose page would not change is left as it is: rendering it again costs ~0.6 s a province, mostly
    the PDF, on every rerun of a week. The page is the commit point: it is removed before and written after
    the PDF, so an existing page always has the PDF of the same data beside it.
    """
    if not is_active(con, week, province):
        return []
    data = report_data(con, week, province)
    page = _folder(out, week) / f"{province}.html"
    document = page.with_suffix(".pdf")
    files = [page, document] if pdf else [page]
    html = render_html(data).encode("utf-8")
    if all(f.exists() for f in files) and page.read_bytes() == html:
        return files
    _clean(page)
    page.unlink(missing_ok=True)
    if pdf:
        write_atomic(document, _pdf_bytes(render_pdf_html(data)))
    write_atomic(page, html)
    return files


def write_reports(con: duckdb.DuckDBPyConnection, out: Path, week: str, pdf: bool = True) -> list[Path]:
    """The national report and every active province's, one after the other."""
    return [write_national_report(con, out, week),
            *(path for p in active_provinces(con, week) for path in write_province_report(con, out, week, p, pdf))]
