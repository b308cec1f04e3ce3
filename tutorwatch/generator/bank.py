"""The supervision accounts of one chunk: every movement the banks book, with running balances.

Deposits follow paid orders, releases follow class consumption (a few days later), refunds follow
approved requests. Movements caused before the first delivered week are folded into an opening balance
the banks never deliver; the first delivered movement of an account sets the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_contracts.feeds import INFLOW_KINDS, MOVEMENT_KINDS
from tutorwatch.generator.activity import Orders, Refunds, Sessions
from tutorwatch.generator.calendar import DAY, Calendar
from tutorwatch.generator.context import Context
from tutorwatch.generator.institutions import NONE

KIND = {k: i for i, k in enumerate(MOVEMENT_KINDS)}
SIGN = np.array([1 if k in INFLOW_KINDS else -1 for k in MOVEMENT_KINDS])
INTEREST_RATE = 0.0035  # yearly, demand deposit


@dataclass
class Movements:
    acct: np.ndarray     # institution index in the chunk
    sec: np.ndarray
    kind: np.ndarray     # index into MOVEMENT_KINDS
    amount: np.ndarray
    order: np.ndarray    # -1 unless deposit or refund
    seq: np.ndarray      # chunk-wide booking sequence: the movement id
    balance: np.ndarray
    hidden: np.ndarray   # booked but never delivered: a continuity break at the account's next movement
    breaks: list[dict]


class _Book:
    """Collects movement columns as they are drawn."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, acct, trigger, sec, kind: str, amount, order=None) -> None:
        acct = np.asarray(acct)
        n = len(acct)
        order = np.full(n, -1) if order is None else order
        self.parts.append((acct, np.broadcast_to(trigger, n), np.broadcast_to(sec, n), np.full(n, KIND[kind]),
                           np.asarray(amount, dtype=np.int64), order))

    def columns(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate(col) for col in zip(*self.parts, strict=True))


def book_movements(o: Orders, sess: Sessions, ref: Refunds, ctx: Context, cal: Calendar,
                   rng: np.random.Generator) -> Movements:
    c = ctx.col
    n_inst = len(c["story"])
    book = _Book()
    book.add(o.inst, o.paid_sec, o.paid_sec + rng.integers(600, 26 * 3600, len(o.inst)), "deposit", o.paid_fen,
             np.arange(len(o.inst)))
    cancel = np.flatnonzero(o.cancel_sec != NONE)
    book.add(o.inst[cancel], o.cancel_sec[cancel], o.cancel_sec[cancel] + rng.integers(3600, 3 * DAY, len(cancel)),
             "refund", o.paid_fen[cancel], cancel)

    so = sess.order
    i = o.inst[so]
    value = o.paid_fen[so] * sess.hours // o.hours[so]
    release = (sess.sec // DAY + rng.integers(1, 6, len(so))) * DAY + rng.integers(10 * 3600, 16 * 3600, len(so))
    st = ctx.at(i, sess.sec // DAY)
    ahead = st.is_("fund_diversion")  # released before the class happens, and more than it is worth
    release = np.where(ahead, np.maximum(sess.sec - rng.integers(7, 22, len(so)) * DAY, o.paid_sec[so] + DAY), release)
    value = np.where(ahead, (value * (1 + 0.25 * st.strength)).astype(np.int64), value)
    book.add(i, sess.sec, release, "release", value)

    paid = np.flatnonzero(ref.paid_sec != NONE)
    rsec = ref.paid_sec[paid]
    book.add(o.inst[ref.order[paid]], rsec, rsec + rng.integers(3600, 8 * 3600, len(paid)), "refund",
             ref.requested_fen[paid], ref.order[paid])

    reserve = c["reserve_required_fen"]
    new = np.flatnonzero(c["new"])
    opened = (c["reg_day"][new] + 1) * DAY + 10 * 3600
    book.add(new, opened, opened, "reserve_in", reserve[new])
    orderly = np.flatnonzero(c["closure_reason"] == "normal")
    out_sec = (c["close_day"][orderly] + 3) * DAY + 11 * 3600
    book.add(orderly, out_sec, out_sec, "reserve_out", reserve[orderly])
    _adjustments(book, ctx, cal, rng)

    acct, trig, sec, kind, amount, order = book.columns()
    close = c["close_day"][acct]
    silent = (close != NONE) & (c["closure_reason"][acct] != "normal") & (sec >= close * DAY)
    keep = ~silent & (sec < cal.end_day * DAY)
    acct, trig, sec, kind, amount, order = (a[keep] for a in (acct, trig, sec, kind, amount, order))
    first = cal.first_day * DAY
    before = (trig < first) | (sec < first)
    opening = np.where(c["new"], 0, reserve) + np.bincount(
        acct[before], weights=(SIGN[kind] * amount)[before], minlength=n_inst).astype(np.int64)
    acct, sec, kind, amount, order = (a[~before] for a in (acct, sec, kind, amount, order))

    interest = _interest(acct, sec, kind, amount, opening, ctx, cal)
    if interest is not None:
        acct, sec, kind, amount, order = (np.r_[a, b] for a, b in zip((acct, sec, kind, amount, order), interest,
                                                                     strict=True))
    by_time = np.lexsort((rng.random(len(acct)), acct, sec))
    acct, sec, kind, amount, order = (a[by_time] for a in (acct, sec, kind, amount, order))
    seq = np.arange(len(acct))
    by_acct = np.lexsort((seq, acct))
    acct, sec, kind, amount, order, seq = (a[by_acct] for a in (acct, sec, kind, amount, order, seq))
    balance = opening[acct] + _group_cumsum(acct, SIGN[kind] * amount)
    hidden, breaks = _hide(acct, kind, amount, balance, ctx, rng)
    return Movements(acct, sec, kind, amount, order, seq, balance, hidden, breaks)


def _group_cumsum(group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running sum within runs of equal, contiguous group values."""
    total = np.cumsum(values)
    starts = np.r_[True, group[1:] != group[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(group)), 0))
    return total - (total - values)[first]


def _adjustments(book: _Book, ctx: Context, cal: Calendar, rng: np.random.Generator) -> None:
    """Bank corrections (out, then back in) for a few accounts; money taken out in fund diversion."""
    c = ctx.col
    n = len(c["story"])
    lo = np.maximum(cal.first_day, c["reg_day"] + 7)  # only on open accounts
    hi = np.where(c["close_day"] != NONE, np.minimum(c["close_day"], cal.end_day), cal.end_day) - 7
    glitch = (rng.random(n) < 0.02) & (lo < hi)
    ep = c["ep_bank_adjustment"]
    day = np.where(ep != NONE, ep, lo + (rng.random(n) * (hi - lo)).astype(np.int64))
    pick = np.flatnonzero(glitch | (ep != NONE))
    amount = rng.integers(50, 3000, len(pick)) * 100
    amount += np.where(ep[pick] != NONE, c["reserve_required_fen"][pick] // 10, 0)
    out = day[pick] * DAY + rng.integers(9 * 3600, 17 * 3600, len(pick))
    back = out + rng.integers(1, 6, len(pick)) * DAY
    book.add(pick, out, out, "adjustment_out", amount)
    book.add(pick, back, back, "adjustment_in", amount)
    div = np.flatnonzero(c["story"] == "fund_diversion")
    times = 1 + np.round(2 * c["strength"][div]).astype(int)
    acct = np.repeat(div, times)
    lo, hi = c["story_start"][acct], np.maximum(c["close_day"][acct] - 3, c["story_start"][acct] + 1)
    day = lo + (rng.random(len(acct)) * (hi - lo)).astype(np.int64)
    sec = day * DAY + rng.integers(9 * 3600, 17 * 3600, len(acct))
    amount = (c["reserve_required_fen"][acct] * rng.uniform(0.2, 0.6, len(acct)) * c["strength"][acct]).astype(np.int64)
    book.add(acct, sec, sec, "adjustment_out", amount // 100 * 100)


def _interest(acct, sec, kind, amount, opening, ctx: Context, cal: Calendar):
    """Quarterly interest on the balance standing the day before the credit."""
    days = cal.quarter_interest_days()
    if not len(days):
        return None
    c = ctx.col
    order = np.lexsort((sec, acct))
    a, s = acct[order], sec[order]
    bal = opening[a] + _group_cumsum(a, (SIGN[kind] * amount)[order])
    n = len(c["story"])
    ia = np.repeat(np.arange(n), len(days))
    isec = np.tile(days, n) * DAY + 2 * 3600
    key = a.astype(np.float64) * 1e11 + s
    pos = np.searchsorted(key, ia.astype(np.float64) * 1e11 + isec) - 1
    same = (pos >= 0) & (a[np.maximum(pos, 0)] == ia)
    before = np.where(same, bal[np.maximum(pos, 0)], opening[ia])
    close = c["close_day"][ia]
    alive = (c["reg_day"][ia] * DAY < isec) & ((close == NONE) | (isec < close * DAY))
    value = (np.maximum(before, 0) * INTEREST_RATE * 91 / 365).astype(np.int64)
    m = alive & (value > 0)
    return ia[m], isec[m], np.full(m.sum(), KIND["interest"]), value[m], np.full(m.sum(), -1)


def _hide(acct, kind, amount, balance, ctx: Context, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """Withhold some movements (diverted money, a few bank glitches); the next movement then breaks continuity."""
    c = ctx.col
    n = len(acct)
    hidden = np.zeros(n, dtype=bool)
    same_prev = np.r_[False, acct[1:] == acct[:-1]]
    same_next = np.r_[acct[1:] == acct[:-1], False]
    diverting = (c["story"][acct] == "fund_diversion") & (kind == KIND["adjustment_out"])
    glitch_acct = rng.random(len(c["story"])) < 0.003
    glitch = glitch_acct[acct] & (rng.random(n) < 0.005)
    candidates = np.flatnonzero((diverting & (rng.random(n) < 0.7) | glitch) & same_prev & same_next)
    breaks = []
    for j in candidates:
        if hidden[j - 1]:
            continue
        hidden[j] = True
    for j in np.flatnonzero(hidden):
        nxt = j + 1
        expected = balance[j - 1] + SIGN[kind[nxt]] * amount[nxt]
        breaks.append({"row": nxt, "expected_balance_fen": int(expected), "reported_balance_fen": int(balance[nxt]),
                       "delta_fen": int(balance[nxt] - expected)})
    return hidden, breaks
