"""The institutions: who they are, which story each lives through, and their filing change log."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.feeds import ACADEMIC_SUBJECTS, FEEDS
from data_contracts.identifiers import USCC_ALPHABET, USCC_WEIGHTS
from data_contracts.regions import PROVINCES
from tutorwatch.generator.calendar import Calendar
from tutorwatch.generator.geography import POPULATION, county_table
from tutorwatch.generator.scales import Scale

NONE = -(10**6)  # "no such day" for day columns, far in the past so comparisons stay simple

STORIES = (
    "healthy", "noisy_healthy", "discount_abscond", "slow_bleed", "fund_diversion", "licence_lapse", "normal_closure",
)
ABNORMAL_STORIES = ("discount_abscond", "slow_bleed", "fund_diversion")
EPISODES = ("promo", "complaints", "bad_month", "governance", "bank_adjustment")

BANKS = {  # code: (weight, GB18030 CSV, delivery days after the Monday following the week)
    "102": (0.20, False, 1), "103": (0.15, True, 2), "104": (0.12, False, 1), "105": (0.18, False, 0),
    "301": (0.08, True, 2), "302": (0.06, False, 1), "308": (0.12, False, 0), "403": (0.09, True, 2),
}
NON_ACADEMIC_SUBJECTS = ("arts", "music", "sports", "stem", "language", "other")
BRANDS = (
    "星火", "育才", "明德", "睿思", "小鹿", "青苗", "乐学", "卓越", "思源", "鸿志", "博文", "优学", "书香", "童画",
    "音悦", "跃动", "未来星", "金话筒", "墨韵", "启明", "知行", "晨曦", "蓝天", "智多星", "向日葵", "新航", "弘毅",
)
SUBJECT_WORDS = {
    "chinese": "语文", "math": "数学思维", "english": "英语", "science": "科学", "arts": "美术", "music": "音乐",
    "sports": "体育", "stem": "编程科技", "language": "口才", "other": "素质",
}
PRICE_FACTOR = {"11": 1.35, "31": 1.35, "44": 1.15, "33": 1.15, "32": 1.15,
                **{p: 0.8 for p in ("54", "63", "64", "62", "52", "53", "65", "66")}}


def uscc(first17: np.ndarray) -> np.ndarray:
    """Append the GB 32100 check character to an (n, 17) array of alphabet indices."""
    check = (31 - (first17 * np.array(USCC_WEIGHTS)).sum(axis=1) % 31) % 31
    idx = np.c_[first17, check]
    alphabet = np.array(list(USCC_ALPHABET))
    return np.array(["".join(row) for row in alphabet[idx]])


def _uscc_for(counties: np.ndarray, prefixes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    digits = np.array([[int(c) for c in p + county] for p, county in zip(prefixes, counties, strict=True)])
    body = rng.integers(0, 31, (len(counties), 9))
    return uscc(np.c_[digits, body])


def _names(province: np.ndarray, subject: np.ndarray, mode: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    brand = rng.choice(BRANDS, len(province))
    suffix = np.where(mode == "online", "教育科技有限公司", rng.choice(["培训学校", "培训中心", "艺术培训有限公司"], len(mode)))
    return np.array([f"{PROVINCES[p][0].rstrip('省市')}{b}{SUBJECT_WORDS[s]}{x}"
                     for p, b, s, x in zip(province, brand, subject, suffix, strict=True)])


def draw_institutions(scale: Scale, n: int, cal: Calendar, rng: np.random.Generator) -> pd.DataFrame:
    """One row per institution: attributes, size, prices, and its planted story with dates and strength."""
    pop = np.array([POPULATION[p] for p in scale.provinces])
    province = rng.choice(np.array(scale.provinces), n, p=pop / pop.sum())
    county = np.empty(n, dtype=object)
    for p in np.unique(province):
        mask = province == p
        codes, w = county_table(p, 12 if scale.name != "province" else 60, rng)
        county[mask] = rng.choice(codes, mask.sum(), p=w)
    county = county.astype(str)
    academic = rng.random(n) < 0.25
    category = np.where(academic, "academic", "non_academic")
    subject = np.where(
        academic, rng.choice(ACADEMIC_SUBJECTS, n, p=[0.25, 0.35, 0.3, 0.1]),
        rng.choice(NON_ACADEMIC_SUBJECTS, n, p=[0.2, 0.2, 0.25, 0.2, 0.1, 0.05]),
    )
    online = rng.random(n) < 0.15
    mode = np.where(online, "online", "offline")
    prefix = np.where(academic ^ (rng.random(n) < 0.25), "52", "91")
    size = scale.orders_per_week * np.exp(rng.normal(-0.32, 0.8, n)) * np.where(online, 1.8, 1.0)
    median = np.where(academic, 150.0, 100.0) * np.where(online, 0.6, 1.0)
    factor = np.array([PRICE_FACTOR.get(p, 1.0) for p in province])
    price_cny = np.clip(np.round(median * factor * np.exp(rng.normal(0, 0.32, n))), 40, 280)
    bank_codes = np.array(list(BANKS))
    bank_w = np.array([b[0] for b in BANKS.values()])
    bank = rng.choice(bank_codes, n, p=bank_w / bank_w.sum())
    account = np.array([f"{b}{d:015d}" for b, d in zip(bank, rng.integers(0, 10**15, n), strict=True)])
    staff = np.where(online, rng.integers(3, 41, n), np.maximum(2, rng.poisson(3 + 6 * size)))
    years = cal.weeks / 52
    new = rng.random(n) < 0.05 * years  # registered during the window
    reg_day = np.where(new, rng.integers(cal.first_day, max(cal.end_day - 28, cal.first_day + 1), n),
                       rng.integers(cal.first_day - 6 * 365, cal.first_day - 14, n))
    df = pd.DataFrame({
        "institution_id": _uscc_for(county, prefix, rng), "province_code": province, "county_code": county,
        "category": category, "subject": subject, "mode": mode, "name": _names(province, subject, mode, rng),
        "licence_no": np.where(online & (rng.random(n) < 0.4), None,
                               [f"教民{c}{k:06d}" for c, k in zip(county, rng.integers(0, 10**6, n), strict=True)]),
        "licence_expiry": rng.integers(cal.first_day + 7, cal.first_day + 3 * 365, n),
        "site_lease_expiry": np.where(online, NONE, rng.integers(cal.first_day + 7, cal.first_day + 2 * 365, n)),
        "fire_safety_ok": np.where(online, None, rng.random(n) > 0.03),
        "staff_count": staff, "staff_verified": staff - rng.binomial(staff, 0.05),
        "supervision_bank": bank, "supervision_account": account,
        "reserve_required_fen": (np.clip(np.round(5 * (0.5 + size)), 5, 50) * 1_000_000).astype(np.int64),
        "size": size, "price_fen": (price_cny * 100).astype(np.int64), "reg_day": reg_day, "new": new,
    })
    _assign_stories(df, cal, scale.abnormal_per_year, rng)
    return df


def _assign_stories(df: pd.DataFrame, cal: Calendar, abnormal_per_year: float, rng: np.random.Generator) -> None:
    """Plant the stories; every kind at least once so a tiny run still has all of them."""
    n, years = len(df), cal.weeks / 52
    n_abnormal = max(3, round(n * abnormal_per_year * years * (1 if n > 500 else 3)))
    counts = {
        "discount_abscond": max(1, round(0.35 * n_abnormal)), "slow_bleed": max(1, round(0.35 * n_abnormal)),
        "fund_diversion": max(1, round(0.3 * n_abnormal)), "licence_lapse": max(1, round(n * 0.004 * years)),
        "normal_closure": max(1, round(n * 0.03 * years)), "noisy_healthy": max(1, round(n * 0.06)),
    }
    eligible = np.flatnonzero(~df["new"].to_numpy())
    chosen = rng.permutation(eligible)[: sum(counts.values())]
    story = np.full(n, "healthy", dtype=object)
    pos = 0
    for kind, k in counts.items():
        story[chosen[pos:pos + k]] = kind
        pos += k
    first, weeks = cal.first_day, cal.weeks
    lo = min(12, weeks // 2)
    close = first + 7 * rng.integers(lo, weeks, n) + rng.integers(0, 7, n)
    lead = rng.integers(4, 17, n)
    start = close - 7 * lead - rng.integers(0, 7, n)
    strength = 0.2 + 0.8 * rng.beta(2, 2, n)
    closes = np.isin(story, ABNORMAL_STORIES + ("licence_lapse", "normal_closure"))
    lapse_outcome = rng.choice(["revoked", "abnormal", "none"], n, p=[0.4, 0.3, 0.3])
    reason = np.select(
        [np.isin(story, ABNORMAL_STORIES), story == "normal_closure", story == "licence_lapse"],
        ["abnormal", "normal", lapse_outcome], None,
    )
    reason = np.where(reason == "none", None, reason)
    closes &= pd.notna(reason)
    df["story"] = story
    df["strength"] = np.where(story == "healthy", 0.0, np.round(strength, 3))
    df["story_start"] = np.where(np.isin(story, ("healthy", "noisy_healthy")), NONE, start)
    df["close_day"] = np.where(closes, close, NONE)
    df["closure_reason"] = np.where(closes, reason, None)
    stop = np.where(story == "discount_abscond", close - 7 * (1 + np.round(2 * strength)), close)
    stop = np.where(story == "fund_diversion", close - 7 * np.round(strength), stop)
    df["stop_teach_day"] = np.where(closes, stop, NONE)
    df["stop_sell_day"] = np.where(story == "normal_closure", start, np.where(closes, close, NONE))
    lapse = story == "licence_lapse"
    df.loc[lapse, "licence_expiry"] = start[lapse]
    site_lapse = lapse & (df["mode"].to_numpy() == "offline")  # the lease runs out around the same time
    df.loc[site_lapse, "site_lease_expiry"] = start[site_lapse] + rng.integers(-14, 29, n)[site_lapse]
    for ep in EPISODES:
        df[f"ep_{ep}"] = NONE
    noisy = np.flatnonzero(story == "noisy_healthy")
    last = max(cal.end_day - 28, first + 1)
    for i in noisy:
        for ep in rng.choice(EPISODES, 1 + int(rng.random() < 0.35), replace=False):
            df.iat[i, df.columns.get_loc(f"ep_{ep}")] = int(rng.integers(first, last))


GOVERNANCE_RATES = {"updated": 0.6, "renamed": 0.04, "legal_rep_changed": 0.08, "relocated": 0.05, "suspended": 0.003}


def change_log(df: pd.DataFrame, cal: Calendar, rng: np.random.Generator) -> pd.DataFrame:
    """The institutions feed: registration, renewals, governance changes (clustered before trouble), closures."""
    cols = FEEDS["institutions"].column_names
    state_cols = [c for c in cols if c not in ("record_date", "event")]
    rows = []
    years = cal.weeks / 52
    for r in df.itertuples(index=False):
        state = {c: getattr(r, c) for c in state_cols}
        state["closure_reason"] = None
        events: list[tuple[int, str]] = []
        end = r.close_day if r.close_day != NONE else cal.end_day
        for event, rate in GOVERNANCE_RATES.items():
            for _ in range(rng.poisson(rate * years)):
                events.append((int(rng.integers(cal.first_day, cal.end_day)), event))
        if r.licence_expiry < cal.end_day + 56 and r.story != "licence_lapse":
            events.append((int(r.licence_expiry - rng.integers(14, 57)), "licence_renewed"))
        if r.site_lease_expiry != NONE and r.site_lease_expiry < cal.end_day + 42 and r.story != "licence_lapse":
            events.append((int(r.site_lease_expiry - rng.integers(7, 43)), "lease_renewed"))
        if r.story_start != NONE:
            s = r.strength
            for event, p in (("legal_rep_changed", 0.5 * s), ("relocated", 0.25 * s), ("renamed", 0.15 * s),
                             ("updated", 0.9 if r.story == "slow_bleed" else 0.6)):
                if rng.random() < p:
                    events.append((int(rng.integers(r.story_start, max(r.story_start + 1, end))), event))
        if r.story == "licence_lapse":
            if rng.random() < 0.6:
                events.append((int(r.licence_expiry + rng.integers(7, 29)), "suspended"))
            if r.close_day == NONE:
                events.append((int(r.licence_expiry + 7 * rng.integers(4, 11)), "licence_renewed"))
        if r.ep_governance != NONE:
            events.append((int(r.ep_governance), "legal_rep_changed"))
        if r.close_day != NONE:
            event = "revoked" if r.closure_reason == "revoked" else "closed"
            events.append((int(r.close_day + rng.integers(0, 4)), event))
        rows.append({**state, "record_date": int(r.reg_day), "event": "registered"})
        for day, event in sorted(events):
            if not (cal.first_day <= day < min(end + 4, cal.end_day)) or day <= r.reg_day:
                continue
            _apply(state, event, r, rng)
            rows.append({**state, "record_date": day, "event": "updated" if event == "lease_renewed" else event})
    log = pd.DataFrame(rows, columns=list(cols))
    log["_dlv"] = np.maximum(0, cal.week_of_day(log["record_date"].to_numpy()))
    return log


def _apply(state: dict, event: str, r, rng: np.random.Generator) -> None:
    if event == "renamed":
        state["name"] = str(rng.choice(BRANDS)) + state["name"][-8:]
    elif event == "relocated" and state["mode"] == "offline":
        state["site_lease_expiry"] = int(state["site_lease_expiry"] + rng.integers(365, 3 * 365))
    elif event == "licence_renewed":
        state["licence_expiry"] = int(state["licence_expiry"] + 3 * 365)
    elif event == "lease_renewed":
        state["site_lease_expiry"] = int(state["site_lease_expiry"] + rng.integers(365, 3 * 365))
    elif event == "updated":
        cut = r.story in ("slow_bleed", "discount_abscond", "fund_diversion")
        staff = max(1, int(state["staff_count"] * (rng.uniform(0.4, 0.8) if cut else rng.uniform(0.9, 1.15))))
        state["staff_count"] = staff
        state["staff_verified"] = min(staff, int(staff - rng.binomial(staff, 0.2 if cut else 0.05)))
    elif event in ("closed", "revoked"):
        state["closure_reason"] = r.closure_reason
