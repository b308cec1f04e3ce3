"""The platform side of one chunk of institutions: orders, class consumptions, refunds, evaluations, complaints.

Everything is drawn as numpy arrays indexed by order, session or request; times are local seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tutorwatch.generator.calendar import DAY, Calendar
from tutorwatch.generator.context import Context
from tutorwatch.generator.institutions import NONE
from tutorwatch.generator.text import complaint_text, phones

PACKAGE_HOURS = np.array([10, 12, 16, 20, 24, 30, 36, 40, 48])
PACKAGE_P = np.array([0.08, 0.12, 0.15, 0.17, 0.2, 0.1, 0.08, 0.05, 0.05])
OVER_CAP_HOURS = np.array([64, 72, 80, 96, 120])
CLASS_TIMES = np.array([9, 10.5, 14, 16, 18.5, 19.5]) * 3600
COMPLAINT_CATEGORIES = np.array(["refund_difficulty", "closure_or_absconding", "false_advertising",
                                 "teaching_quality", "safety", "overcharging", "other"])
CATEGORY_P = {
    "usual": [0.2, 0.02, 0.15, 0.3, 0.05, 0.1, 0.18],
    "distress": [0.4, 0.12, 0.12, 0.22, 0.02, 0.07, 0.05],
    "closed": [0.28, 0.7, 0.0, 0.0, 0.0, 0.0, 0.02],
}


@dataclass
class Orders:
    inst: np.ndarray
    paid_sec: np.ndarray
    hours: np.ndarray
    hpw: np.ndarray
    list_fen: np.ndarray
    paid_fen: np.ndarray
    course_start: np.ndarray
    course_end: np.ndarray
    first_week: np.ndarray    # index into the teaching calendar
    class_dow: np.ndarray
    class_time: np.ndarray
    cancel_sec: np.ndarray    # NONE unless cancelled
    phone: np.ndarray
    grade: np.ndarray
    channel: np.ndarray
    course_no: np.ndarray


@dataclass
class Sessions:
    order: np.ndarray
    sec: np.ndarray
    hours: np.ndarray


@dataclass
class Refunds:
    order: np.ndarray
    requested_sec: np.ndarray
    requested_fen: np.ndarray
    approved: np.ndarray
    decided_sec: np.ndarray  # NONE while undecided
    paid_sec: np.ndarray     # NONE unless paid


def draw_orders(inst: pd.DataFrame, ctx: Context, cal: Calendar, teach: np.ndarray,
                rng: np.random.Generator) -> Orders:
    """New orders per institution-week follow size, season and story; packages, discounts and caps per order."""
    c = ctx.col
    n = len(inst)
    mondays = cal.sim_mondays()
    grid_i = np.repeat(np.arange(n), len(mondays))
    grid_d = np.tile(mondays + 3, n)
    st = ctx.at(grid_i, grid_d)
    s, p = st.strength, st.progress
    mult = np.ones(len(grid_i))
    mult *= np.where(st.is_("discount_abscond"), 1 + 3 * s * p**0.7, 1)
    mult *= np.where(st.is_("slow_bleed"), 1 - 0.85 * s * p, 1)
    mult *= np.where(st.is_("fund_diversion"), 1 + 0.6 * s * p, 1)
    mult *= np.where(st.is_("licence_lapse"), 1 - 0.4 * s, 1)
    mult *= np.where(st.promo, 3.0, 1) * np.where(st.bad_month, 0.5, 1)
    lam = c["size"][grid_i] * cal.sales_season(grid_d) * mult
    counts = rng.poisson(lam)
    oi = np.repeat(grid_i, counts)
    day = np.repeat(grid_d - 3, counts) + rng.choice(7, counts.sum(), p=[.12, .12, .12, .12, .14, .19, .19])
    stop_sell = np.where(c["stop_sell_day"] != NONE, c["stop_sell_day"], np.iinfo(np.int64).max)
    keep = (day >= c["reg_day"][oi]) & (day < stop_sell[oi]) & (day < cal.end_day)
    oi, day = oi[keep], day[keep]
    k = len(oi)
    paid_sec = day * DAY + rng.integers(8 * 3600, 22 * 3600, k)
    order = np.argsort(paid_sec, kind="stable")
    oi, day, paid_sec = oi[order], day[order], paid_sec[order]

    st = ctx.at(oi, day)
    s = st.strength
    disc_phase = st.is_("discount_abscond")
    discount = np.where(rng.random(k) < 0.3, rng.uniform(0.03, 0.15, k), 0.0)
    discount += np.where(disc_phase, s * rng.uniform(0.25, 0.55, k), 0)
    discount += np.where(st.promo, rng.uniform(0.15, 0.35, k), 0)
    discount = np.minimum(discount, 0.75)
    p_over = 0.03 + np.where(disc_phase, 0.35 * s, 0) + np.where(st.is_("fund_diversion"), 0.15 * s, 0) + 0.1 * st.promo
    over = rng.random(k) < p_over
    long_span = over & (rng.random(k) < 0.5)
    summer = cal.is_summer(day) & ~over
    hours = np.where(summer, rng.choice(PACKAGE_HOURS[:6], k), rng.choice(PACKAGE_HOURS, k, p=PACKAGE_P))
    hpw = np.where(summer, rng.integers(4, 11, k), rng.choice([1, 2, 3, 4], k, p=[.15, .55, .2, .1]))
    hours = np.where(over & ~long_span, rng.choice(OVER_CAP_HOURS, k), hours)
    hours = np.where(long_span, rng.choice([36, 40, 48], k), hours)
    hpw = np.where(long_span, rng.integers(1, 3, k), np.maximum(hpw, -(-hours // 12)))
    course_start = day + rng.integers(1, 11, k)  # classes begin after the payment
    monday = course_start - (course_start - cal.sim_first_day) % 7
    first_week = np.searchsorted(teach, monday)
    sessions = -(-hours // hpw)
    class_dow = course_start - monday
    course_end = teach[first_week + sessions - 1] + class_dow + rng.integers(0, 15, k)
    list_fen = hours * c["price_fen"][oi]
    paid_fen = np.maximum(100, np.round(list_fen * (1 - discount) / 100).astype(np.int64) * 100)
    cancelled = rng.random(k) < 0.015
    phone = phones(rng, k)
    repeat = np.flatnonzero(rng.random(k) < 0.15)
    back = np.maximum(repeat - rng.integers(1, 6, len(repeat)), 0)
    same = oi[back] == oi[repeat]
    phone[repeat[same]] = phone[back[same]]
    academic = c["category"][oi] == "academic"
    grade = np.where(academic, rng.integers(1, 10, k), rng.integers(0, 10, k))
    return Orders(
        inst=oi, paid_sec=paid_sec, hours=hours, hpw=hpw, list_fen=list_fen, paid_fen=paid_fen,
        course_start=course_start, course_end=course_end, first_week=first_week, class_dow=class_dow,
        class_time=rng.choice(CLASS_TIMES, k).astype(np.int64),
        cancel_sec=np.where(cancelled, paid_sec + rng.integers(1, 6, k) * DAY + rng.integers(0, 8 * 3600, k), NONE),
        phone=phone, grade=grade, channel=rng.choice(5, k, p=[.45, .25, .1, .05, .15]),
        course_no=rng.integers(1, 9, k),
    )


def draw_sessions(o: Orders, ctx: Context, cal: Calendar, teach: np.ndarray, rng: np.random.Generator) -> Sessions:
    """One consumption per order and teaching week, until the hours run out, classes stop or the window ends."""
    live = np.flatnonzero(o.cancel_sec == NONE)
    n_sess = -(-o.hours[live] // o.hpw[live])
    so = np.repeat(live, n_sess)
    j = np.arange(len(so)) - np.repeat(np.cumsum(n_sess) - n_sess, n_sess)
    hours = np.minimum(o.hpw[so], o.hours[so] - j * o.hpw[so])
    day = teach[o.first_week[so] + j] + o.class_dow[so]
    i = o.inst[so]
    st = ctx.at(i, day)
    attend = 0.985 - np.where(st.is_("slow_bleed"), 0.45 * st.strength * st.progress, 0) - 0.25 * st.bad_month
    stop = ctx.col["stop_teach_day"][i]
    keep = (rng.random(len(so)) < attend) & ((stop == NONE) | (day < stop)) & (day < cal.end_day)
    return Sessions(order=so[keep], sec=(day * DAY + o.class_time[so])[keep], hours=hours[keep])


def _story_refund_window(ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per institution: the days in which its story makes parents ask for their money back, and how many do."""
    c = ctx.col
    story, s, start, close = c["story"], c["strength"], c["story_start"], c["close_day"]
    a = np.full(len(story), NONE)
    b = np.full(len(story), NONE)
    q = np.zeros(len(story))
    for name, lo, hi, prob in (
        ("discount_abscond", c["stop_teach_day"] - 14, close, 0.2 + 0.4 * s),
        ("slow_bleed", start, close, 0.4 * s),
        ("fund_diversion", close - 28, close, 0.15 * s),
        ("licence_lapse", start, ctx.phase_end, 0.15 * s),
        ("normal_closure", close - 14, close, np.ones(len(story))),
    ):
        m = story == name
        a[m], b[m], q[m] = lo[m], hi[m], prob[m]
    bad = c["ep_bad_month"] != NONE
    a[bad], b[bad], q[bad] = c["ep_bad_month"][bad], c["ep_bad_month"][bad] + 28, 0.1
    return a, b, q


def draw_refunds(o: Orders, sess: Sessions, ctx: Context, cal: Calendar,
                 rng: np.random.Generator) -> tuple[Refunds, Sessions]:
    """Refund requests (a few always, many in trouble), the decisions and payments; classes stop at the request."""
    c = ctx.col
    k = len(o.inst)
    live = o.cancel_sec == NONE
    base = live & (rng.random(k) < 0.04)
    req_day = np.where(base, o.course_start + (rng.random(k) * (o.course_end - o.course_start)).astype(np.int64), NONE)
    a, b, q = _story_refund_window(ctx)
    lo = np.maximum(a[o.inst], o.course_start)
    hi = np.minimum(b[o.inst], o.course_end)
    story_hit = live & (a[o.inst] != NONE) & (lo < hi) & (rng.random(k) < q[o.inst])
    late = np.sqrt(rng.random(k))  # requests pile up towards the end of the story
    story_day = lo + (late * (hi - lo)).astype(np.int64)
    req_day = np.where(story_hit & ((req_day == NONE) | (story_day < req_day)), story_day, req_day)
    paid_day = o.paid_sec // DAY
    close = c["close_day"][o.inst]
    ok = (req_day != NONE) & (req_day > paid_day) & (req_day < cal.end_day) & ((close == NONE) | (req_day < close))
    req_sec = np.where(ok, req_day * DAY + rng.integers(8 * 3600, 23 * 3600, k), NONE)

    stays = (req_sec[sess.order] == NONE) | (sess.sec < req_sec[sess.order])
    sess = Sessions(sess.order[stays], sess.sec[stays], sess.hours[stays])
    consumed = np.bincount(sess.order, weights=sess.hours, minlength=k).astype(np.int64)
    remaining = o.hours - consumed
    ro = np.flatnonzero(ok & (remaining > 0))
    n = len(ro)
    i = o.inst[ro]
    st = ctx.at(i, req_day[ro])
    s, p = st.strength, st.progress
    delay = rng.integers(1, 11, n).astype(float)
    delay *= np.where(st.is_("slow_bleed"), 1 + 5 * s * p, 1) * np.where(st.is_("fund_diversion"), 1 + 3 * s * p, 1)
    never = rng.random(n) < (np.where(st.is_("slow_bleed"), 0.5 * s * p, 0) + 0.9 * st.stopped
                             + np.where(st.is_("fund_diversion"), 0.3 * s * p, 0))
    orderly = st.story == "normal_closure"
    delay = np.where(orderly, rng.integers(1, 6, n), delay)
    approved = orderly | (rng.random(n) < 0.9)
    decided = req_sec[ro] + (delay * DAY).astype(np.int64) + rng.integers(0, 6 * 3600, n)
    paid = decided + rng.integers(1, 8, n) * DAY
    close_sec = np.where(close[ro] != NONE, close[ro] * DAY, np.iinfo(np.int64).max)
    decided = np.where(never | (decided >= close_sec), NONE, decided)
    paid = np.where(approved & (decided != NONE) & (paid < close_sec - DAY), paid, NONE)  # booked before it closes
    refunds = Refunds(order=ro, requested_sec=req_sec[ro], requested_fen=o.paid_fen[ro] * remaining[ro] // o.hours[ro],
                      approved=approved, decided_sec=decided, paid_sec=paid)
    return refunds, sess


def draw_evaluations(o: Orders, sess: Sessions, ctx: Context, cal: Calendar,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """About 0.3 ratings per order after a class; unhappy parents in failing institutions."""
    per_order = np.bincount(sess.order, minlength=len(o.inst))
    pick = rng.random(len(sess.order)) < 0.3 / np.maximum(per_order[sess.order], 1)
    order = sess.order[pick]
    rated = sess.sec[pick] + rng.integers(3600, 3 * DAY, pick.sum())
    i = o.inst[order]
    st = ctx.at(i, rated // DAY)
    s, p = st.strength, st.progress
    q_bad = (np.where(st.is_("slow_bleed"), 0.6 * s * p, 0) + np.where(st.is_("discount_abscond"), 0.3 * s * p, 0)
             + np.where(st.is_("fund_diversion"), 0.2 * s * p, 0) + np.where(st.is_("licence_lapse"), 0.2 * s, 0)
             + 0.3 * st.bad_month)
    stars = rng.choice([1, 2, 3, 4, 5], len(order), p=[.04, .04, .10, .27, .55])
    stars = np.where(rng.random(len(order)) < q_bad, rng.integers(1, 3, len(order)), stars)
    close = ctx.col["close_day"][i]
    keep = (rated < cal.end_day * DAY) & ((close == NONE) | (rated < close * DAY))
    return order[keep], rated[keep], stars[keep]


@dataclass
class Complaints:
    inst: np.ndarray
    order: np.ndarray        # -1 when the complaint names no order
    received_sec: np.ndarray
    category: np.ndarray
    text: list[str]
    phone: np.ndarray
    responded_sec: np.ndarray
    closed_sec: np.ndarray   # resolved or rejected
    outcome: np.ndarray      # "resolved", "rejected" or "" (still responded/open)
    planted: list[str]


def draw_complaints(inst: pd.DataFrame, o: Orders, ctx: Context, cal: Calendar,
                    rng: np.random.Generator) -> Complaints:
    """Complaints per institution-week: a low background, rising in trouble, a burst after an abnormal closure."""
    c = ctx.col
    n = len(inst)
    mondays = cal.first_day + 7 * np.arange(cal.weeks)
    gi = np.repeat(np.arange(n), cal.weeks)
    gd = np.tile(mondays, n) + 3
    st = ctx.at(gi, gd)
    s, p = st.strength, st.progress
    size = c["size"][gi]
    rate = 0.01 + 0.01 * size
    rate += np.where(st.is_("discount_abscond"), 0.3 * s * p, 0) + 2 * s * st.stopped * (gd < c["close_day"][gi])
    rate += np.where(st.is_("slow_bleed"), 1.2 * s * p, 0) + np.where(st.is_("fund_diversion"), 0.4 * s * p, 0)
    rate += np.where(st.is_("licence_lapse"), 0.2 * s, 0) + np.where(st.is_("normal_closure"), 0.05, 0)
    rate += np.where(st.complaint_burst, rng.uniform(2, 4, len(gi)), 0) + 0.3 * st.bad_month
    close = c["close_day"][gi]
    after = (close != NONE) & (gd >= close) & (gd < close + 42) & (c["closure_reason"][gi] != "normal")
    rate = np.where(after, (1 + 6 * s) * np.sqrt(size / 0.5 + 0.5) * np.exp(-(gd - close) / 14), rate)
    silent = (close != NONE) & (gd >= close + 42)
    counts = rng.poisson(np.where(silent | (gd - 3 < c["reg_day"][gi]), 0, rate))
    ci = np.repeat(gi, counts)
    k = len(ci)
    received = np.repeat(gd - 3, counts) * DAY + rng.integers(0, 7 * DAY, k)
    closed_after = np.repeat(after, counts)
    distress = np.repeat(st.phase | st.complaint_burst | st.bad_month, counts)
    category = np.empty(k, dtype=object)
    for kind, mask in (("closed", closed_after), ("distress", distress & ~closed_after),
                       ("usual", ~distress & ~closed_after)):
        category[mask] = rng.choice(COMPLAINT_CATEGORIES, mask.sum(), p=CATEGORY_P[kind])

    # an order of the same institution paid before the complaint, for about 70% of complaints
    by_inst = np.argsort(o.inst, kind="stable")
    bounds = np.searchsorted(o.inst[by_inst], np.arange(n + 1))
    lo, hi = bounds[ci], bounds[ci + 1]
    pos = np.minimum(lo + (rng.random(k) * (hi - lo)).astype(np.int64), max(len(by_inst) - 1, 0))
    cand = by_inst[pos] if len(by_inst) else np.zeros(k, dtype=np.int64)
    usable = (hi > lo) & (rng.random(k) < 0.7)
    order = np.where(usable & (o.paid_sec[cand] < received), cand, -1) if len(by_inst) else np.full(k, -1)
    phone = np.where(order >= 0, o.phone[np.maximum(order, 0)], phones(rng, k))
    texts, planted = [], []
    names, counties = c["name"][ci], c["county_code"][ci]
    with_id = rng.random(k) < 0.15
    for j in range(k):
        text, pii = complaint_text(rng, category[j], names[j], str(phone[j]), counties[j], bool(with_id[j]))
        texts.append(text)
        planted.extend(pii)
    responded = np.where(rng.random(k) < 0.85, received + rng.integers(1, 8, k) * DAY, NONE)
    u = rng.random(k)
    outcome = np.where(responded == NONE, "", np.where(u < 0.75, "resolved", np.where(u < 0.85, "rejected", "")))
    closed_sec = np.where(outcome != "", responded + rng.integers(2, 21, k) * DAY, NONE)
    return Complaints(ci, order, received, category.astype(str), texts, phone, responded, closed_sec, outcome, planted)

