"""Synthetic landing data for tutorwatch: a country of training institutions, some of which fail.

`generate` writes `OUT/landing/` exactly as the interchange standard describes (what the platform
and the banks would deliver) and `OUT/truth/` beside it (the planted stories and breaches, which
only tests and backtests read). See docs/generator.md.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import numpy as np

from data_contracts.feeds import FEEDS
from tutorwatch.generator.calendar import Calendar, iso_date
from tutorwatch.generator.chunk import simulate_chunk
from tutorwatch.generator.institutions import NONE, change_log, draw_institutions
from tutorwatch.generator.scales import SCALES
from tutorwatch.generator.tables import plant_bad_rows, table
from tutorwatch.generator.writer import LandingLog, write_landing, write_part

__all__ = ["generate"]


def generate(scale: str = "demo", weeks: int | None = None, seed: int = 7, out: Path = Path("data/demo"),
             start: str | None = None, institutions: int | None = None, chunk: int | None = None) -> str:
    """Write OUT/landing and OUT/truth; returns a short summary.

    `institutions` and `chunk` override the scale's size and simulation chunk (small runs in tests).
    """
    sc = SCALES[scale]
    first = date.fromisoformat(start or sc.start)
    if first.weekday() != 0:
        raise ValueError(f"--start must be a Monday, got {first} ({first:%A})")
    cal = Calendar(first, weeks or sc.weeks)
    n = institutions or sc.institutions
    out = Path(out)
    landing, truth, tmp = out / "landing", out / "truth", out / ".generator_parts"
    for folder in (landing, truth, tmp):
        shutil.rmtree(folder, ignore_errors=True)
    truth.mkdir(parents=True)

    rng = np.random.default_rng([seed, 0])
    inst = draw_institutions(sc, n, cal, rng)
    platform_days = cal.platform_delivery_days(rng)
    log = change_log(inst, cal, rng)
    filings = table(FEEDS["institutions"], {c: log[c].to_numpy() for c in FEEDS["institutions"].column_names},
                    log["_dlv"].to_numpy())
    write_part(tmp, "institutions", 0, plant_bad_rows(filings, "institutions", rng, platform_days))

    breaks: list[dict] = []
    with (truth / "pii_planted.txt").open("w", encoding="utf-8") as pii:
        step = chunk or sc.chunk
        for k, lo in enumerate(range(0, n, step), start=1):
            part = inst.iloc[lo:lo + step].reset_index(drop=True)
            res = simulate_chunk(part, cal, seed, k, platform_days, float_money="refunds" not in sc.parquet_feeds)
            for feed, t in res.tables.items():
                write_part(tmp, feed, k, t)
            breaks += res.breaks
            pii.writelines(f"{p}\n" for p in sorted(res.pii))
    landing_log = write_landing(tmp, landing, cal, sc, platform_days, rng)
    shutil.rmtree(tmp)
    _write_truth(truth, inst, breaks, landing_log)
    return _summary(sc.name, cal, inst, landing_log, breaks, out)


def _day(d: int) -> str:
    return "" if d == NONE else iso_date(d).isoformat()


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


def _write_truth(truth: Path, inst, breaks: list[dict], log: LandingLog) -> None:
    stories = [{
        "institution_id": r.institution_id, "province_code": r.province_code, "story": r.story,
        "story_start": _day(r.story_start), "closure_date": _day(r.close_day),
        "closure_reason": r.closure_reason if isinstance(r.closure_reason, str) else "", "strength": r.strength,
    } for r in inst.itertuples(index=False)]
    _write_csv(truth / "institutions.csv", stories, list(stories[0]))
    _write_csv(truth / "bad_rows.csv", log.bad_rows, ["feed", "file", "row_number", "kind"])
    _write_csv(truth / "continuity_breaks.csv", breaks,
               ["bank_code", "account_id", "institution_id", "movement_id", "booked_at", "week",
                "expected_balance_fen", "reported_balance_fen", "delta_fen"])
    _write_csv(truth / "deliveries.csv", log.deliveries, list(log.deliveries[0]))


def _summary(scale: str, cal: Calendar, inst, log: LandingLog, breaks: list[dict], out: Path) -> str:
    stories = inst["story"].value_counts().to_dict()
    abnormal = int((inst["closure_reason"] == "abnormal").sum())
    rows = ", ".join(f"{k} {v:,}" for k, v in log.rows.items())
    return (
        f"generated {scale}: {len(inst):,} institutions, {cal.weeks} weeks from {cal.start} into {out}\n"
        f"  files: {len(log.deliveries)} deliveries; rows: {rows}\n"
        f"  stories: {', '.join(f'{k} {v}' for k, v in sorted(stories.items()))}; abnormal closures {abnormal}\n"
        f"  planted: {len(log.bad_rows)} bad rows, {len(breaks)} continuity breaks (see {out / 'truth'})"
    )
