"""Builders of hand-made warehouses for the model tests: filings in staging and a small indicators mart with a planted signal.

Institutions that close abnormally show falling coverage and rising complaints in the 8 weeks before their
closure filing; the others drift around healthy values. Nothing here comes from the generator.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.warehouse import connect, create_staging_tables

FIRST_MONDAY = date(2026, 1, 5)  # 2026-W02
INDICATORS = ("coverage_ratio", "unresolved_complaints", "sales_spike_ratio", "discount_depth")


def iso_week(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def uscc(n: int) -> str:
    """An 18-character id; the model never checks the check character, so a plain counter will do."""
    return f"91110000MA{n:07d}X"


def mart_row(inst: str, monday: date, province: str, values: dict) -> dict:
    return {"institution_id": inst, "week": iso_week(monday), "week_start": monday,
            "week_end": monday + timedelta(days=6), "province_code": province,
            "county_code": f"{province}0101", "name": f"机构{inst[-8:]}", "category": "academic",
            "mode": "offline", **values}


def filing(inst: str, record_date: date, event: str, province: str, reason: str | None, delivered: date) -> dict:
    return {"institution_id": inst, "record_date": record_date, "event": event, "name": f"机构{inst[-8:]}",
            "province_code": province, "county_code": f"{province}0101", "category": "academic",
            "subject": "math", "mode": "offline", "closure_reason": reason, "_delivery_date": delivered}


def write_warehouse(path: Path, mart: pd.DataFrame, filings: pd.DataFrame, indicators=INDICATORS) -> Path:
    """A real DuckDB file with the staging tables, `filings` in staging.institutions and `mart` as the mart.

    Indicator columns of `indicators` missing from `mart` are NULL (a NULL never breaks a rule)."""
    con = connect(path)
    create_staging_tables(con)
    cols = ", ".join(filings.columns)
    con.register("filings_df", filings)
    con.execute(f"insert into staging.institutions ({cols}) select {cols} from filings_df")
    con.register("mart_df", mart)
    typed = ", ".join(f'"{c}"::DOUBLE as "{c}"' if c in mart else f'NULL::DOUBLE as "{c}"' for c in indicators)
    con.execute(f"""create or replace table marts.institution_week_indicators as
        select institution_id, week, week_start::date as week_start, week_end::date as week_end, province_code,
               county_code, name, category, mode, {typed} from mart_df""")
    con.close()
    return path


def synthetic(n_institutions: int = 120, n_weeks: int = 44, n_abnormal: int = 24, seed: int = 0
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mart rows and filings: every 5th institution (up to n_abnormal) closes abnormally, with the signal before."""
    rng = np.random.default_rng(seed)
    mondays = [FIRST_MONDAY + timedelta(weeks=w) for w in range(n_weeks)]
    last_delivery = mondays[-1] + timedelta(days=7)
    rows, filings = [], []
    abnormal = list(range(0, 5 * n_abnormal, 5))[:n_abnormal]
    for n in range(n_institutions):
        inst, province = uscc(n), ("11", "44")[n % 2]
        filings.append(filing(inst, FIRST_MONDAY - timedelta(days=30), "registered", province, None, FIRST_MONDAY))
        close_week = 12 + (abnormal.index(n) * (n_weeks - 14)) // n_abnormal if n in abnormal else None
        for w, monday in enumerate(mondays):
            if close_week is not None and w > close_week:
                break
            to_close = (close_week - w) if close_week is not None else 99
            stress = max(0.0, 1 - to_close / 9) if to_close <= 9 else 0.0
            rows.append(mart_row(inst, monday, province, {
                "coverage_ratio": 1.1 - 0.8 * stress + rng.normal(0, 0.08),
                "unresolved_complaints": float(rng.poisson(0.3 + 4 * stress)),
                "sales_spike_ratio": 1 + abs(rng.normal(0, 0.4)) + 2 * stress * rng.random(),
                "discount_depth": float(np.clip(rng.normal(0.15, 0.05), 0, 1)),
            }))
        if close_week is not None:
            closed = mondays[close_week] + timedelta(days=2)
            filings.append(filing(inst, closed, "closed", province, "abnormal", closed + timedelta(days=5)))
    filings[-1]["_delivery_date"] = max(filings[-1]["_delivery_date"], last_delivery)
    filings.append(filing(uscc(n_institutions - 1), mondays[-1], "updated", ("11", "44")[(n_institutions - 1) % 2],
                          None, last_delivery))
    return pd.DataFrame(rows), pd.DataFrame(filings)
