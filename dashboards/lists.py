"""Public black and white lists: what the regulator publishes, derived from case outcomes and filings.

Only the institution (a legal entity: its credit code, name and region) and the reason are published;
no parent, staff or complaint data ever reaches these files.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd

from dashboards import cases, data

PUBLIC_COLUMNS = ["institution_id", "name", "province_code", "county_code", "reason", "basis", "since"]
INACTIVE_EVENTS = ("closed", "revoked", "suspended")


def _black(filings: pd.DataFrame, all_cases: pd.DataFrame) -> pd.DataFrame:
    """Escalated cases (overdue rectification), revoked licences and abnormal closures."""
    escalated = all_cases[all_cases["status"] == "escalated"] if not all_cases.empty else all_cases
    rows = [dict(institution_id=c.institution_id, name=c.institution_name, province_code=c.province_code,
                 county_code=c.county_code, reason="逾期未整改 rectification overdue, escalated",
                 basis=c.notice_no, since=str(c.deadline)) for c in escalated.itertuples()]
    struck = filings[(filings["event"] == "revoked") | (filings["closure_reason"] == "abnormal")]
    rows += [dict(institution_id=f.institution_id, name=f.name, province_code=f.province_code,
                  county_code=f.county_code,
                  reason=("吊销办学许可 licence revoked" if f.event == "revoked"
                          else "非正常停业未结清预收费 abnormal closure"),
                  basis=f"备案记录 filing {f.event}", since=str(f.record_date)) for f in struck.itertuples()]
    return pd.DataFrame(rows, columns=PUBLIC_COLUMNS).drop_duplicates(["institution_id", "reason"])


def _white(filings: pd.DataFrame, all_cases: pd.DataFrame, black: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Active filing with a valid licence, and no open or escalated case, and not on the black list."""
    open_ids = set() if all_cases.empty else set(all_cases.loc[all_cases["status"] != "closed", "institution_id"])
    licensed = filings["licence_expiry"].isna() | (pd.to_datetime(filings["licence_expiry"]) >= pd.Timestamp(as_of))
    good = filings[~filings["event"].isin(INACTIVE_EVENTS) & licensed
                   & ~filings["institution_id"].isin(open_ids | set(black["institution_id"]))]
    return pd.DataFrame({"institution_id": good["institution_id"], "name": good["name"],
                         "province_code": good["province_code"], "county_code": good["county_code"],
                         "reason": "备案有效且无未结整改 filed, licensed, no open case",
                         "basis": "备案记录 filing", "since": good["record_date"].astype(str)},
                        columns=PUBLIC_COLUMNS)


def _write(frame: pd.DataFrame, folder: Path, stem: str, as_of: date) -> dict:
    frame = frame.sort_values(["province_code", "county_code", "institution_id"]).reset_index(drop=True)
    frame.to_csv(folder / f"{stem}.csv", index=False, encoding="utf-8-sig")
    (folder / f"{stem}.json").write_text(json.dumps({"as_of": str(as_of), "entries": frame.to_dict("records")},
                                                    ensure_ascii=False, indent=1), encoding="utf-8")
    return {"csv": folder / f"{stem}.csv", "json": folder / f"{stem}.json", "rows": len(frame)}


def publish_public_lists(cases_url: str | None, warehouse: Path, out: Path, as_of: date | None = None) -> dict:
    """Write `<out>/public/blacklist.{csv,json}` and `whitelist.{csv,json}`; return their paths and sizes."""
    as_of = as_of or date.today()
    Path(out).mkdir(parents=True, exist_ok=True)
    engine = cases.engine_for(cases_url or cases.default_url(Path(out)))
    all_cases = pd.DataFrame(cases.list_cases(engine))
    with data.reader(Path(warehouse)) as con:
        filings = con.execute(data.read_sql("filings_current.sql"), [as_of]).df()
    black = _black(filings, all_cases)
    white = _white(filings, all_cases, black, as_of)
    folder = Path(out) / "public"
    folder.mkdir(parents=True, exist_ok=True)
    return {"blacklist": _write(black, folder, "blacklist", as_of),
            "whitelist": _write(white, folder, "whitelist", as_of)}
