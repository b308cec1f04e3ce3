"""Rectification notices (整改通知书): numbered, HTML and PDF with embedded CJK fonts, sha256 kept.

The PDF is what the institution receives; its hash is stored with the case so that a notice shown later
can be proven to be the one that was issued.
"""

from __future__ import annotations

import hashlib
import html
import os
from datetime import date
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

# 〔year〕<province short name><county code>教监整字第NNNN号 (county names are not in the warehouse).
PROVINCE_SHORT = {
    "11": "京", "12": "津", "13": "冀", "14": "晋", "15": "蒙", "21": "辽", "22": "吉", "23": "黑",
    "31": "沪", "32": "苏", "33": "浙", "34": "皖", "35": "闽", "36": "赣", "37": "鲁", "41": "豫",
    "42": "鄂", "43": "湘", "44": "粤", "45": "桂", "46": "琼", "50": "渝", "51": "川", "52": "贵",
    "53": "云", "54": "藏", "61": "陕", "62": "甘", "63": "青", "64": "宁", "65": "新", "66": "兵",
}
REQUIRED_ACTIONS = (
    "立即停止销售超过60课时或3个月的预收费课程,新收费用全部进入资金监管账户;",
    "按未消课预收费余额足额补足监管资金及风险保证金;",
    "对已受理的退费申请在规定期限内办结,并向家长说明办理进度;",
    "逐项说明上述问题的原因及整改措施,并附相关证明材料;",
    "在整改期限内向本局书面报告整改情况。",
)
FONT_CSS = """
@page { size: A4; margin: 25mm 22mm; }
body { font-family: "Noto Serif CJK SC", "Noto Sans CJK SC", serif; font-size: 11pt; line-height: 1.6; }
h1 { text-align: center; font-size: 20pt; letter-spacing: 2pt; }
.no { text-align: center; }
table { border-collapse: collapse; width: 100%; }
td, th { border: 1px solid #444; padding: 3pt 5pt; font-size: 10pt; }
.sign { text-align: right; margin-top: 24pt; }
"""


def notice_number(province_code: str, county_code: str, year: int, seq: int) -> str:
    return f"〔{year}〕{PROVINCE_SHORT.get(province_code, province_code)}{county_code}教监整字第{seq:04d}号"


TIER_ZH = {"red": "红色", "orange": "橙色", "yellow": "黄色"}
# Money indicators are stored in fen; the notice states yuan, as officials and institutions read it.
UNIT_ZH = {"fen": "元", "ratio": "倍", "share": "比例", "count": "个", "weeks": "周", "days": "天",
           "stars": "星", "probability": "概率"}


def _value(value: object, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "fen":
        value = value / 100
    return f"{value:,.2f}" if isinstance(value, float) else str(value)


def _finding_row(finding: dict, labels: dict[str, tuple[str, str]]) -> str:
    name, unit = labels.get(finding["indicator"], (finding["indicator"], ""))
    cells = (name, _value(finding.get("value"), unit), _value(finding.get("threshold"), unit),
             UNIT_ZH.get(unit, unit), TIER_ZH.get(finding.get("tier"), finding.get("tier") or ""))
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def render_html(case: dict, findings: list[dict], labels: dict[str, tuple[str, str]],
                legal_basis: list[str]) -> str:
    """The notice page; `labels` maps an indicator to (Chinese name, unit), from the indicator registry."""
    e = html.escape
    rows = "".join(_finding_row(f, labels) for f in findings)
    actions = "".join(f"<li>{e(a)}</li>" for a in REQUIRED_ACTIONS)
    basis = "".join(f"<li>{e(b)}</li>" for b in legal_basis)
    issued: date = case["issued_on"]
    deadline: date = case["deadline"]
    return f"""<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">
<title>{e(case['notice_no'])}</title><style>{FONT_CSS}</style></head><body>
<h1>校外培训机构整改通知书</h1>
<p class="no">{e(case['notice_no'])}</p>
<p>{e(case['institution_name'])}(统一社会信用代码:{e(case['institution_id'])}):</p>
<p>经校外培训预收费资金监管平台监测({e(case['week'])}),你机构存在以下风险情形({e(TIER_ZH.get(case['tier'], case['tier']))}预警):</p>
<table><tr><th>指标</th><th>监测值</th><th>阈值</th><th>单位</th><th>等级</th></tr>{rows}</table>
<p>依据:</p><ul>{basis}</ul>
<p>现责令你机构于 <strong>{deadline:%Y年%m月%d日}</strong> 前完成以下整改:</p><ol>{actions}</ol>
<p>逾期未整改或整改不到位的,将依法予以公示并纳入黑名单管理。</p>
<p class="sign">{e(case['county_code'])} 教育行政部门<br>{issued:%Y年%m月%d日}</p>
</body></html>"""


def write_notice(case: dict, page: str, notices_dir: Path) -> tuple[Path, Path, str]:
    """Write `<notice>.html` and `.pdf` under `notices_dir`; return both paths and the PDF's sha256."""
    from weasyprint import HTML  # heavy import, only when a notice is issued

    notices_dir.mkdir(parents=True, exist_ok=True)
    stem = f"case-{case['case_id']:06d}"
    html_path, pdf_path = notices_dir / f"{stem}.html", notices_dir / f"{stem}.pdf"
    html_path.write_text(page, encoding="utf-8")
    HTML(string=page).write_pdf(pdf_path)
    return html_path, pdf_path, hashlib.sha256(pdf_path.read_bytes()).hexdigest()
