"""The transparent rule score of `indicators.rules` for every institution-week (fallback and baseline).

`indicators.rules` scores only the candidates of its warning list; the model needs every row, so this
applies the same rule book and `rule_score(points)` to the whole mart. Returns None while the rules module
is not there, so the model never depends on it to run.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd


def load(con: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """`institution_id, week, score, contributions` (JSON of the broken rules, most points first), or None."""
    try:
        from indicators import rules
    except ImportError:
        return None
    weeks = con.execute("select distinct week from marts.institution_week_indicators").df()
    provinces = [p for (p,) in con.execute(
        "select distinct province_code from marts.institution_week_indicators").fetchall()]
    rows = con.execute("select institution_id, week from marts.institution_week_indicators").df()
    if rows.empty:
        return rows.assign(score=pd.Series(dtype="float64"), contributions=pd.Series(dtype="object"))
    present = {c for (c,) in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'marts' and table_name = 'institution_week_indicators'").fetchall()}
    book = rules.rule_book(provinces)
    book = book[book["indicator"].isin(present)]  # a mart without some indicators still gets the others' rules
    columns = ", ".join(f'"{c}"' for c in sorted(set(book["indicator"])))
    con.register("selected_weeks", weeks)
    con.register("rule_book", book)
    try:
        flags = con.execute((rules.HERE / "rules_flags.sql").read_text(encoding="utf-8").format(columns=columns)).df()
    finally:
        con.unregister("selected_weeks")
        con.unregister("rule_book")
    points = flags.groupby(["institution_id", "week"])["points"].sum().rename("points").reset_index()
    reasons = (flags.sort_values(["points", "indicator"], ascending=[False, True])
               .groupby(["institution_id", "week"])
               .apply(lambda f: json.dumps([{"indicator": i, "value": float(v), "contribution": float(p)}
                                            for i, v, p in zip(f["indicator"], f["value"], f["points"])],
                                           ensure_ascii=False), include_groups=False)
               .rename("contributions").reset_index()) if len(flags) else None
    out = rows.merge(points, on=["institution_id", "week"], how="left")
    out["score"] = out["points"].fillna(0).map(rules.rule_score)
    out = out.merge(reasons, on=["institution_id", "week"], how="left") if reasons is not None else \
        out.assign(contributions=None)
    out["contributions"] = out["contributions"].fillna("[]")
    return out[["institution_id", "week", "score", "contributions"]]
