"""The Dash app: national overview, province warning list, institution, cases and data quality.

Every callback and download route takes the scope from the logged-in user on the server and passes
it to the query functions of `dashboards.data` and `dashboards.cases`; nothing from the browser widens it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import dash_ag_grid as dag
import pandas as pd
import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html, no_update
from flask import Flask, Response, abort, request, send_file
from flask_login import current_user

from dashboards import auth, cases, data
from data_contracts.regions import PROVINCES
from dashboards.issue import NotAllowed, indicator_labels, issue_notices
from dashboards.scope import Scope

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

TZ = ZoneInfo("Asia/Shanghai")
TIER_COLOURS = {"red": "#d62728", "orange": "#ff7f0e", "yellow": "#e3c000"}
NAV = [("/", "全国概览 Overview"), ("/province", "预警名单 Warnings"), ("/cases", "整改案件 Cases"),
       ("/quality", "数据质量 Data quality")]
GRID_COLUMNS = [
    {"field": "week", "headerName": "周 Week", "width": 110},
    {"field": "province_code", "headerName": "省 Prov.", "width": 90},
    {"field": "county_code", "headerName": "县 County", "width": 110},
    {"field": "name", "headerName": "机构 Institution", "cellRenderer": "markdown", "width": 200},
    {"field": "institution_id", "headerName": "统一社会信用代码", "width": 190},
    {"field": "tier", "headerName": "等级 Tier", "width": 110,
     "valueFormatter": {"function": "({red: '红色 red', orange: '橙色 orange', yellow: '黄色 yellow'})"
                                    "[params.value] || params.value"},
     "cellStyle": {"styleConditions": [
        {"condition": f"params.value == '{t}'", "style": {"color": c, "fontWeight": "bold"}}
        for t, c in TIER_COLOURS.items()]}},
    {"field": "score", "headerName": "风险分 Score", "filter": "agNumberColumnFilter", "width": 120,
     "valueFormatter": {"function": "params.value == null ? '' : d3.format('.2f')(params.value)"}},
    {"field": "rank", "headerName": "排名 Rank", "filter": "agNumberColumnFilter", "width": 100},
    {"field": "change", "headerName": "变化 Change", "width": 110},
    {"field": "reasons_zh", "headerName": "预警原因 Reasons", "flex": 1, "minWidth": 300},
]

# Only officials who may issue notices get row checkboxes.
ISSUE_SELECTION = {"mode": "multiRow", "checkboxes": True, "headerCheckbox": False, "enableClickSelection": False}


def _user_scope() -> Scope:
    """The caller's scope; the login guard already refused anonymous requests, this is the second lock."""
    if not current_user.is_authenticated:
        abort(401)
    return current_user.scope


def _today() -> date:
    return datetime.now(TZ).date()


def _yuan(fen: float) -> float:
    return round(fen / 100, 2)


CELL_STYLE = {"padding": ".2em .6em", "borderBottom": "1px solid #ddd"}


def _cell(value: object) -> html.Td:
    if isinstance(value, html.A | dcc.Link):
        return html.Td(value, style=CELL_STYLE)
    return html.Td("" if pd.isna(value) else str(value), style=CELL_STYLE)


def _table(df: pd.DataFrame, table_id: str, headers: dict[str, str] | None = None) -> html.Table | html.P:
    if df is None or df.empty:
        return html.P("暂无数据 / no data", id=table_id)
    headers = headers or {}
    return html.Table(id=table_id, style={"borderCollapse": "collapse", "margin": ".5em 0"}, children=[
        html.Thead(html.Tr([html.Th(headers.get(c, c), style=CELL_STYLE) for c in df.columns])),
        html.Tbody([html.Tr([_cell(v) for v in row]) for row in df.itertuples(index=False)]),
    ])


def _graph(fig: go.Figure, graph_id: str) -> dcc.Graph:
    fig.update_layout(margin=dict(l=40, r=20, t=40, b=40), height=320, font_family="Noto Sans CJK SC")
    return dcc.Graph(id=graph_id, figure=fig, config={"displaylogo": False})


class Pages:
    """Page builders; each reads the warehouse read-only under the caller's scope."""

    def __init__(self, warehouse: Path, engine, today: Callable[[], date]):
        self.warehouse, self.engine, self.today = warehouse, engine, today

    def overview(self, scope: Scope, _query: dict) -> list:
        with data.reader(self.warehouse) as con:
            weeks = data.weeks(con, scope)
            if not weeks:
                return [html.H2("全国概览"), html.P("暂无预警 / no warnings yet")]
            overview = data.province_overview(con, scope, weeks[0])
            trend = data.tier_trend(con, scope)
        overview["province"] = overview["province_code"].map(lambda c: PROVINCES.get(c, (c,))[0])
        tiers = go.Figure([go.Bar(name=t, x=overview["province"], y=overview[t], marker_color=c)
                           for t, c in TIER_COLOURS.items()])
        tiers.update_layout(barmode="stack", title=f"各省预警数 Warnings by province ({weeks[0]})")
        money = go.Figure([
            go.Bar(name="预收费未消课余额 liability (元)", x=overview["province"],
                   y=overview["prepaid_liability_fen"].map(_yuan)),
            go.Bar(name="监管账户余额 supervised (元)", x=overview["province"],
                   y=overview["supervised_balance_fen"].map(_yuan))])
        money.update_layout(barmode="group", title="预收费余额与监管资金 Liability vs supervised balance")
        trend_fig = go.Figure([go.Scatter(name=t, x=g["week"], y=g["warnings"], mode="lines+markers",
                                          line_color=TIER_COLOURS[t]) for t, g in trend.groupby("tier")])
        trend_fig.update_layout(title="预警趋势 Trend over weeks")
        return [html.H2(f"全国概览 National overview — {weeks[0]}"),
                _graph(tiers, "overview-tiers"), _graph(money, "overview-money"), _graph(trend_fig, "overview-trend")]

    def province(self, scope: Scope, query: dict) -> list:
        with data.reader(self.warehouse) as con:
            weeks = data.weeks(con, scope)
        week = query.get("week") if query.get("week") in weeks else (weeks[0] if weeks else None)
        children = [
            html.H2("预警名单 Warning list"),
            html.Div([html.Label("周 Week "), dcc.Dropdown(id="week", options=weeks, value=week,
                                                           clearable=False, style={"width": "12em"}),
                      html.A("导出CSV / Export CSV", id="csv-link", href=f"/download/warnings.csv?week={week or ''}",
                             style={"marginLeft": "1em"})], style={"display": "flex", "alignItems": "center"}),
            dcc.Store(id="grid-week", data=week),
            dag.AgGrid(id="warnings-grid", columnDefs=GRID_COLUMNS, rowModelType="infinite",
                       defaultColDef={"sortable": True, "filter": "agTextColumnFilter", "resizable": True,
                                      "filterParams": {"maxNumConditions": 1, "buttons": ["reset"]}},
                       getRowId="params.data.week + '|' + params.data.institution_id",
                       dashGridOptions={"cacheBlockSize": 100, "maxBlocksInCache": 10,
                                        **({"rowSelection": ISSUE_SELECTION} if scope.can_issue else {})},
                       style={"height": "480px"}),
        ]
        if scope.can_issue:
            children += [html.Button("下发整改通知 / Issue rectification notice", id="issue-btn", n_clicks=0,
                                     style={"marginTop": "1em"}),
                         dcc.Loading(html.Div(id="issue-result"))]
        return children

    def institution(self, scope: Scope, institution_id: str) -> list:
        with data.reader(self.warehouse) as con:
            detail = data.institution_detail(con, scope, institution_id)
        if detail is None:
            return [html.H2("无权查看 / not found"), html.P("该机构不存在或不在您的辖区 / not in your jurisdiction",
                                                        id="not-in-scope")]
        labels, _ = indicator_labels()
        filing = detail["filing"].iloc[0]
        indicators = detail["indicators"]
        names = [c for c in indicators.columns if c not in IDENTITY_COLUMNS]
        flagged = [f["indicator"] for r in detail["warnings"]["reasons"] for f in json.loads(r or "[]")]
        timeline = _timeline(indicators, names, labels, next((n for n in reversed(flagged) if n in names), None))
        history = detail["scores"].merge(detail["warnings"], on="week", how="outer", suffixes=("", "_warning"))
        history["contributions"] = history["contributions"].map(lambda c: _top_contributions(c, labels))
        history["score"] = history["score"].round(3)
        history = history.reindex(columns=list(HISTORY_HEADERS))
        own = cases.list_cases(self.engine, scope.clause, institution_id)
        return [
            html.H2(f"{filing['name']}({institution_id})", id="institution-title"),
            html.P(f"省 {filing['province_code']} · 县 {filing['county_code']} · {filing['category']} · "
                   f"{filing['mode']}"),
            _graph(timeline, "institution-timeline"),
            html.H3("风险分与预警原因 Score history and reasons"), _table(history, "score-history", HISTORY_HEADERS),
            html.H3("订单/退费/投诉 Orders, refunds, complaints per week"),
            _table(detail["activity"], "activity", {"orders": "订单数", "refund_requests": "退费申请",
                                                    "complaints": "投诉", "paid_fen": "实收(分)",
                                                    "requested_fen": "申请退费(分)"}),
            html.H3("整改案件 Cases"), _case_table(pd.DataFrame(own), self.today(), "institution-cases"),
        ]

    def cases(self, scope: Scope, _query: dict) -> list:
        today = self.today()
        cases.mark_overdue(self.engine, today)
        own = pd.DataFrame(cases.list_cases(self.engine, scope.clause))
        children = [html.H2("整改案件 Rectification cases"), _case_counts(own, today),
                    _case_table(own, today, "cases-table")]
        if scope.can_issue and not own.empty:
            children += [html.Div([
                dcc.Dropdown(id="case-id", options=[{"label": r.notice_no, "value": r.case_id}
                                                    for r in own.itertuples()], placeholder="案件 case",
                             style={"width": "24em"}),
                dcc.Dropdown(id="case-status", options=[{"label": f"{cases.STATUS_ZH[s]} {s}", "value": s}
                                                        for s in cases.TRANSITIONS if s != "issued"],
                             placeholder="新状态 new status", style={"width": "14em"}),
                html.Button("更新 / Update", id="case-update", n_clicks=0)], style={"display": "flex", "gap": "1em"}),
                html.Div(id="case-result")]
        return children

    def quality(self, _scope: Scope, _query: dict) -> list:
        with data.reader(self.warehouse) as con:
            dq = data.data_quality(con)
        return [html.H2("数据质量 Data quality"),
                html.H3("报送文件 Files loaded / rejected"), _table(dq["files"], "dq-files"),
                html.H3("被拒文件 Rejected files"), _table(dq["rejected"], "dq-rejected"),
                html.H3("隔离数据(按规则) Quarantine by rule"), _table(dq["quarantine"], "dq-quarantine"),
                html.H3("监管账户流水断点(按银行) Bank statement breaks by bank"),
                _table(dq["continuity"], "dq-continuity")]


IDENTITY_COLUMNS = {"institution_id", "week", "week_start", "week_end", "province_code", "county_code", "name",
                    "category", "mode"}
HISTORY_HEADERS = {"week": "周 Week", "model_name": "模型 Model", "score": "风险分 Score",
                   "contributions": "主要因素 Top factors", "tier": "等级 Tier", "rank": "排名 Rank",
                   "reasons_zh": "预警原因 Reasons", "change": "变化 Change"}


def _timeline(indicators: pd.DataFrame, names: list[str], labels: dict, first: str | None) -> go.Figure:
    """One indicator at a time (their units differ), switched by a menu inside the figure."""
    first = first or (names[0] if names else None)
    fig = go.Figure([go.Scatter(name=labels.get(n, (n, ""))[0], x=indicators["week"], y=indicators[n],
                                mode="lines+markers", visible=n == first) for n in names])
    fig.update_layout(title="指标走势 Indicator timeline", showlegend=False, updatemenus=[dict(
        x=1, xanchor="right", y=1.15, active=names.index(first) if first else 0, buttons=[
            dict(label=f"{labels.get(n, (n, ''))[0]} ({labels.get(n, ('', n))[1]})", method="update",
                 args=[{"visible": [m == n for m in names]}]) for n in names])])
    return fig


def _top_contributions(contributions: object, labels: dict, top: int = 3) -> str:
    if not isinstance(contributions, str):
        return ""
    items = json.loads(contributions)[:top]
    return "; ".join(f"{labels.get(i['indicator'], (i['indicator'], ''))[0]} {i['contribution']:+.2f}" for i in items)


def _case_state(row, today: date) -> str:
    if row["status"] in ("closed", "rectified", "escalated"):
        return ""
    if row["deadline"] < today:
        return "逾期 overdue"
    return "即将到期 due" if (row["deadline"] - today).days <= 7 else "办理中 open"


def _case_counts(df: pd.DataFrame, today: date) -> html.P:
    if df.empty:
        return html.P("")
    states = df.apply(_case_state, axis=1, today=today)
    open_ = int((df["status"] != "closed").sum())
    return html.P(f"未结案 open: {open_} · 即将到期 due: {int((states == '即将到期 due').sum())} · "
                  f"逾期 overdue: {int((states == '逾期 overdue').sum())}", id="case-counts")


def _case_table(df: pd.DataFrame, today: date, table_id: str):
    if df.empty:
        return html.P("暂无案件 / no cases", id=table_id)
    view = pd.DataFrame({
        "文号 Notice": df["notice_no"],
        "机构 Institution": [dcc.Link(n, href=f"/institution/{i}") for n, i in zip(df["institution_name"],
                                                                                 df["institution_id"])],
        "等级 Tier": df["tier"], "状态 Status": df["status"].map(lambda s: f"{cases.STATUS_ZH[s]} {s}"),
        "下发日 Issued": df["issued_on"].astype(str), "整改期限 Deadline": df["deadline"].astype(str),
        "提醒 Due": df.apply(_case_state, axis=1, today=today),
        "通知书 Notice": [html.A("PDF", href=f"/notices/{c}.pdf", target="_blank") for c in df["case_id"]],
    })
    return _table(view, table_id)


def _warning_rows(rows: list[dict]) -> list[dict]:
    """Grid rows with the institution name as a link to its page."""
    return [{**r, "name": f"[{r['name']}](/institution/{r['institution_id']})"} for r in rows]


def create_app(warehouse: Path, out: Path, cases_url: str | None = None, users_path: Path | None = None,
               today: Callable[[], date] = _today, deadline_days: int = cases.DEFAULT_DEADLINE_WORKING_DAYS,
               secret_key: str | None = None) -> Dash:
    """Build the app; `today` and `deadline_days` are injectable so that deadlines are testable."""
    warehouse, out = Path(warehouse), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    engine = cases.engine_for(cases_url or cases.default_url(out))
    users = auth.load_users(Path(users_path or auth.EXAMPLE_USERS))
    server = Flask(__name__)
    # Sessions survive restarts and span gunicorn workers only with a configured key.
    server.secret_key = secret_key or os.environ.get("TUTORWATCH_SECRET_KEY") or secrets.token_hex(32)
    auth.install(server, users)
    pages = Pages(warehouse, engine, today)
    app = Dash(__name__, server=server, title="tutorwatch 校外培训风险预警", suppress_callback_exceptions=True,
               serve_locally=True)
    app.layout = html.Div([
        dcc.Location(id="url", refresh="callback-nav"),
        html.Div(id="header"),
        html.Div(id="page", style={"padding": "0 1em"}),
    ], style={"fontFamily": "'Noto Sans CJK SC', sans-serif"})

    @app.callback(Output("header", "children"), Output("page", "children"), Input("url", "pathname"),
                  Input("url", "search"))
    def render(pathname, search):
        scope = _user_scope()
        query = _parse_query(search)
        header = html.Div([html.Strong("校外培训风险预警 tutorwatch "),
                           *[dcc.Link(label, href=href, style={"margin": "0 .8em"}) for href, label in NAV],
                           html.Span(auth.role_label(current_user), id="whoami", style={"marginLeft": "2em"}),
                           html.A("退出 Logout", href="/logout", style={"marginLeft": "1em"})],
                          style={"padding": ".6em 1em", "background": "#f3f3f3"})
        try:
            if pathname and pathname.startswith("/institution/"):
                return header, pages.institution(scope, pathname.rsplit("/", 1)[-1])
            builder = {"/province": pages.province, "/cases": pages.cases, "/quality": pages.quality}.get(
                pathname or "/", pages.overview)
            return header, builder(scope, query)
        except data.WarehouseBusy:
            return header, html.P("数据更新中,请稍后刷新 / the pipeline is updating the warehouse, retry shortly")

    @app.callback(Output("url", "search"), Input("week", "value"), prevent_initial_call=True)
    def choose_week(week):
        _user_scope()
        return f"?week={week}"

    @app.callback(Output("warnings-grid", "getRowsResponse"), Input("warnings-grid", "getRowsRequest"),
                  State("grid-week", "data"), prevent_initial_call=True)
    def grid_rows(req, week):
        scope = _user_scope()
        if not req:
            return no_update
        try:
            with data.reader(warehouse) as con:
                rows, total = data.warnings_page(con, scope, week, int(req.get("startRow", 0)),
                                                 int(req.get("endRow", 100)), req.get("filterModel"),
                                                 req.get("sortModel"))
        except (ValueError, data.WarehouseBusy):
            rows, total = [], 0
        return {"rowData": _warning_rows(rows), "rowCount": total}

    @app.callback(Output("csv-link", "href"), Input("warnings-grid", "filterModel"), State("grid-week", "data"),
                  prevent_initial_call=True)
    def csv_link(filter_model, week):
        _user_scope()
        return f"/download/warnings.csv?{urlencode({'week': week or '', 'filter': json.dumps(filter_model or {})})}"

    @app.callback(Output("issue-result", "children"), Input("issue-btn", "n_clicks"),
                  State("warnings-grid", "selectedRows"), prevent_initial_call=True)
    def issue(n_clicks, selected):
        scope = _user_scope()
        keys = [(r["week"], r["institution_id"]) for r in selected or []]
        if not n_clicks or not keys:
            return "请先勾选预警 / select warnings first"
        try:
            with data.reader(warehouse) as con:
                issued = issue_notices(con, engine, scope, current_user.username, keys, out, today(),
                                       deadline_days)
        except NotAllowed as exc:
            return f"无权下发 / not allowed: {exc}"
        return html.Ul([html.Li([f"{c['notice_no']} {c['institution_name']} 整改期限 deadline {c['deadline']} ",
                                 html.A("PDF", href=f"/notices/{c['case_id']}.pdf", target="_blank")],
                                className="issued") for c in issued], id="issued-list")

    @app.callback(Output("case-result", "children"), Input("case-update", "n_clicks"),
                  State("case-id", "value"), State("case-status", "value"), prevent_initial_call=True)
    def update_case(n_clicks, case_id, status):
        scope = _user_scope()
        if not (scope.can_issue and case_id and status):
            return "请选择案件和状态 / choose a case and a status"
        if not cases.list_cases(engine, scope.clause, case_id=case_id):
            return "无权操作 / not allowed"
        try:
            case = cases.transition(engine, case_id, status, current_user.username)
        except cases.CaseError as exc:
            return f"不允许 / refused: {exc}"
        return f"{case['notice_no']}: {cases.STATUS_ZH[case['status']]} ({case['status']})"

    @server.route("/download/warnings.csv")
    def download_warnings():
        scope = _user_scope()
        week = request.args.get("week") or None
        try:
            filters = json.loads(request.args.get("filter", "{}"))
            with data.reader(warehouse) as con:
                text = data.warnings_csv(con, scope, week, filters)
        except (ValueError, AttributeError):
            abort(400)
        except data.WarehouseBusy:
            abort(503)
        return Response(text, mimetype="text/csv", headers={
            "Content-Disposition": f"attachment; filename=warnings-{week or 'all'}.csv"})

    @server.route("/notices/<int:case_id>.<kind>")
    def notice_file(case_id: int, kind: str):
        scope = _user_scope()
        found = cases.list_cases(engine, scope.clause, case_id=case_id)
        if kind not in ("pdf", "html") or not found or not found[0][f"notice_{kind}"]:
            abort(404)
        return send_file(found[0][f"notice_{kind}"])

    return app


def _parse_query(search: str | None) -> dict:
    return dict(parse_qsl((search or "").lstrip("?")))


def serve(warehouse: Path, out: Path, host: str, port: int) -> None:
    """`tutorwatch dashboard`: the development server (use gunicorn with dashboards.wsgi:server in production)."""
    users = os.environ.get("TUTORWATCH_USERS")
    app = create_app(warehouse, out, os.environ.get("TUTORWATCH_CASES_URL"), Path(users) if users else None)
    app.run(host=host, port=port, debug=False)
