"""Hand-made marts for the publication tests: indicator rows with every registry column, NULL unless set."""

from __future__ import annotations

from datetime import date, timedelta

from indicators.registry import NAMES

INDICATOR_DDL = (
    "create table marts.institution_week_indicators (institution_id varchar, week varchar, week_start date, "
    "week_end date, province_code varchar, county_code varchar, name varchar, category varchar, mode varchar, "
    + ", ".join(f'"{n}" double' for n in NAMES) + ")"
)


def week_start(week: str) -> date:
    return date.fromisocalendar(int(week[:4]), int(week[6:]), 1)


def add_rows(con, rows: list[dict]) -> None:
    """Insert indicator rows; a row gives institution_id, week, province_code and any indicator values."""
    for row in rows:
        start = week_start(row["week"])
        base = dict(week_start=start, week_end=start + timedelta(days=6),
                    county_code=row["province_code"] + "0101", name=f"机构{row['institution_id'][-3:]}",
                    category="academic", mode="offline")
        values = {**base, **row}
        cols = ", ".join(f'"{c}"' for c in values)
        con.execute(f"insert into marts.institution_week_indicators ({cols}) values ({', '.join('?' * len(values))})",
                    list(values.values()))
