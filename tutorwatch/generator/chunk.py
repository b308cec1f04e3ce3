"""Simulate one chunk of institutions end to end and return its rows for every feed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from data_contracts.feeds import CHANNELS, FEEDS, GRADES, MOVEMENT_KINDS
from tutorwatch.generator.activity import (
    Orders, Sessions, draw_complaints, draw_evaluations, draw_orders, draw_refunds, draw_sessions,
)
from tutorwatch.generator.bank import Movements, book_movements
from tutorwatch.generator.calendar import DAY, Calendar, iso_date
from tutorwatch.generator.context import Context
from tutorwatch.generator.institutions import BANKS, NONE
from tutorwatch.generator.tables import delivery_weeks, ids, plant_bad_rows, table

GB18030_BANKS = tuple(code for code, (_, gb, _) in BANKS.items() if gb)


@dataclass
class ChunkResult:
    tables: dict[str, pa.Table]
    breaks: list[dict] = field(default_factory=list)
    pii: set[str] = field(default_factory=set)


def simulate_chunk(inst: pd.DataFrame, cal: Calendar, seed: int, chunk: int, delivery_days: np.ndarray,
                   float_money: bool) -> ChunkResult:
    rng = np.random.default_rng([seed, chunk])
    ctx = Context(inst)
    teach = cal.teaching_mondays(horizon_weeks=80)
    o = draw_orders(inst, ctx, cal, teach, rng)
    sess = draw_sessions(o, ctx, cal, teach, rng)
    ref, sess = draw_refunds(o, sess, ctx, cal, rng)
    mv = book_movements(o, sess, ref, ctx, cal, rng)
    iid = inst["institution_id"].to_numpy()
    order_id = ids(f"O{chunk:03d}", np.arange(len(o.inst)), 8)
    out = ChunkResult(tables={})
    t = out.tables
    t["orders"] = _orders(o, iid, order_id, cal, rng)
    t["consumptions"] = _consumptions(o, sess, iid, order_id, ctx, cal, chunk, rng)
    t["refunds"] = _refunds(o, ref, iid, order_id, cal, chunk, rng)
    t["evaluations"] = _evaluations(o, sess, ctx, iid, order_id, cal, chunk, rng)
    complaints_table, complaint_pii = _complaints(inst, o, ctx, iid, order_id, cal, chunk, rng)
    t["complaints"] = complaints_table
    t["account_movements"], out.breaks = _movements(mv, inst, o, order_id, cal, chunk, rng)
    kinds = {"refunds": None if float_money else ("refund_unknown_order", "negative_money", "unknown_enum")}
    for name in ("orders", "consumptions", "refunds", "evaluations", "complaints"):
        t[name] = plant_bad_rows(t[name], name, rng, delivery_days, kinds.get(name))
    bank = t["account_movements"].column("bank_code").to_numpy(zero_copy_only=False)
    one_per_gb_bank = [int(np.flatnonzero(bank == b)[0]) for b in GB18030_BANKS if (bank == b).any()]
    t["account_movements"] = plant_bad_rows(t["account_movements"], "account_movements", rng, delivery_days,
                                            extra=np.array(one_per_gb_bank, dtype=np.int64))
    out.pii = {str(p) for p in o.phone} | complaint_pii
    return out


def _orders(o: Orders, iid, order_id, cal: Calendar, rng) -> pa.Table:
    """Each order is delivered as paid; a cancelled one again, corrected, when it is cancelled."""
    n = len(o.inst)
    cancelled = np.flatnonzero((o.cancel_sec != NONE) & (o.cancel_sec < cal.end_day * DAY))
    idx = np.r_[np.arange(n), cancelled]
    sec = np.r_[o.paid_sec, o.cancel_sec[cancelled]]
    status = np.r_[np.full(n, "paid", dtype=object), np.full(len(cancelled), "cancelled", dtype=object)]
    sel, dlv = delivery_weeks(cal, idx, sec, rng)
    j = idx[sel]
    inst_ids = iid[o.inst[j]]
    short = np.array([s[8:14] + "-C" for s in iid])  # course ids read like the institution's own numbering
    course = np.char.add(short[o.inst[j]], o.course_no[j].astype(str))
    return table(FEEDS["orders"], {
        "order_id": order_id.take(j), "institution_id": inst_ids, "course_id": course,
        "parent_phone": o.phone[j].astype(str), "student_grade": np.array(GRADES)[o.grade[j]],
        "list_price_fen": o.list_fen[j], "paid_fen": o.paid_fen[j], "class_hours": o.hours[j],
        "course_start": o.course_start[j], "course_end": o.course_end[j], "paid_at": o.paid_sec[j],
        "channel": np.array(CHANNELS)[o.channel[j]], "status": status[sel],
    }, dlv)


def _consumptions(o: Orders, sess: Sessions, iid, order_id, ctx: Context, cal: Calendar, chunk: int, rng) -> pa.Table:
    """Delivered classes, plus a few classes beyond a fully consumed order's hours (planted breaches)."""
    first = cal.first_day * DAY
    consumed = np.bincount(sess.order, weights=sess.hours, minlength=len(o.inst))
    last = np.full(len(o.inst), NONE)
    np.maximum.at(last, sess.order, sess.sec)
    earliest = np.full(len(o.inst), np.iinfo(np.int64).max)
    np.minimum.at(earliest, sess.order, sess.sec)
    full = np.flatnonzero((consumed == o.hours) & (earliest >= first))  # all its classes delivered
    extra = rng.choice(full, min(len(full), rng.binomial(len(sess.order), 0.0002) + 1), replace=False) \
        if len(full) else np.array([], dtype=np.int64)
    extra_sec = last[extra] + 7 * DAY
    stop = ctx.col["stop_teach_day"][o.inst[extra]]
    extra = extra[(extra_sec < cal.end_day * DAY) & ((stop == NONE) | (extra_sec < stop * DAY))]
    extra_sec = last[extra] + 7 * DAY
    keep = sess.sec >= first
    order = np.r_[sess.order[keep], extra]
    sec = np.r_[sess.sec[keep], extra_sec]
    hours = np.r_[sess.hours[keep], o.hpw[extra]]
    seq = np.arange(len(order))
    sel, dlv = delivery_weeks(cal, seq, sec, rng)
    cid = ids(f"K{chunk:03d}", seq[sel], 9)
    t = table(FEEDS["consumptions"], {
        "consumption_id": cid, "order_id": order_id.take(order[sel]), "institution_id": iid[o.inst[order[sel]]],
        "consumed_at": sec[sel], "class_hours": hours[sel],
    }, dlv)
    bad = np.where(sel >= keep.sum(), "consumption_over_hours", None)
    return t.set_column(t.num_columns - 1, "_bad", pa.array(bad, pa.string()))


def _state_deliveries(cal: Calendar, rng, first_sec, *later_secs):
    """Rows delivered once per state they reach: stage 0 at `first_sec`, stage k at `later_secs[k-1]` where set.

    Returns the row index, the stage and the delivery of each delivered version (only those before the end).
    """
    n = len(first_sec)
    reached = [np.flatnonzero(s != NONE) for s in later_secs]
    idx = np.concatenate([np.arange(n), *reached])
    sec = np.concatenate([first_sec, *(s[r] for s, r in zip(later_secs, reached, strict=True))])
    stage = np.concatenate([np.zeros(n, int), *(np.full(len(r), k, int) for k, r in enumerate(reached, 1))])
    live = sec < cal.end_day * DAY
    idx, sec, stage = idx[live], sec[live], stage[live]
    sel, dlv = delivery_weeks(cal, idx, sec, rng)
    return idx[sel], stage[sel], dlv


def _refunds(o: Orders, ref, iid, order_id, cal: Calendar, chunk: int, rng) -> pa.Table:
    """Each request is delivered again whenever its state changes (decision, payment): corrections."""
    j, st, dlv = _state_deliveries(cal, rng, ref.requested_sec, ref.decided_sec, ref.paid_sec)
    decision = np.where(ref.approved[j], "approved", "rejected")
    status = np.where(st == 2, "paid", np.where(st == 1, decision, "requested"))
    return table(FEEDS["refunds"], {
        "refund_id": ids(f"R{chunk:03d}", j, 8), "order_id": order_id.take(ref.order[j]),
        "institution_id": iid[o.inst[ref.order[j]]], "requested_at": ref.requested_sec[j],
        "requested_fen": ref.requested_fen[j], "status": status,
        "decided_at": np.where(st >= 1, ref.decided_sec[j], NONE), "paid_at": np.where(st == 2, ref.paid_sec[j], NONE),
    }, dlv)


def _evaluations(o: Orders, sess: Sessions, ctx: Context, iid, order_id, cal: Calendar, chunk: int, rng) -> pa.Table:
    order, rated, stars = draw_evaluations(o, sess, ctx, cal, rng)
    keep = rated >= cal.first_day * DAY
    order, rated, stars = order[keep], rated[keep], stars[keep]
    seq = np.arange(len(order))
    sel, dlv = delivery_weeks(cal, seq, rated, rng)
    return table(FEEDS["evaluations"], {
        "evaluation_id": ids(f"E{chunk:03d}", seq[sel], 8), "order_id": order_id.take(order[sel]),
        "institution_id": iid[o.inst[order[sel]]], "rated_at": rated[sel], "stars": stars[sel],
    }, dlv)


def _complaints(inst, o: Orders, ctx: Context, iid, order_id, cal: Calendar, chunk: int, rng):
    """Each complaint is delivered when received, and again when answered and when closed."""
    c = draw_complaints(inst, o, ctx, cal, rng)
    j, st, dlv = _state_deliveries(cal, rng, c.received_sec, c.responded_sec, c.closed_sec)
    status = np.where(st == 2, c.outcome[j], np.where(st == 1, "responded", "open"))
    oid = _optional_order_ids(order_id, c.order[j])
    texts = np.array(c.text, dtype=object)
    t = table(FEEDS["complaints"], {
        "complaint_id": ids(f"P{chunk:03d}", j, 7), "institution_id": iid[c.inst[j]], "order_id": oid,
        "received_at": c.received_sec[j], "category": c.category[j], "text": texts[j],
        "parent_phone": c.phone[j].astype(str), "status": status,
        "responded_at": np.where(st >= 1, c.responded_sec[j], NONE),
        "resolved_at": np.where((st == 2) & (c.outcome[j] == "resolved"), c.closed_sec[j], NONE),
    }, dlv)
    return t, {str(p) for p in c.phone} | set(c.planted)


def _movements(mv: Movements, inst, o: Orders, order_id, cal: Calendar, chunk: int, rng):
    """Delivered movements (the withheld ones left out) and the continuity breaks that leaves behind."""
    bank = inst["supervision_bank"].to_numpy()[mv.acct]
    account = inst["supervision_account"].to_numpy()[mv.acct]
    iid = inst["institution_id"].to_numpy()[mv.acct]
    mid = np.asarray(ids(f"M{chunk:03d}", mv.seq, 9), dtype=object)
    breaks = [{
        "bank_code": bank[b["row"]], "account_id": account[b["row"]], "institution_id": iid[b["row"]],
        "movement_id": mid[b["row"]], "booked_at": _iso(mv.sec[b["row"]]),
        "week": _iso_week(mv.sec[b["row"]]), **{k: v for k, v in b.items() if k != "row"},
    } for b in mv.breaks]
    shown = np.flatnonzero(~mv.hidden)
    sel, dlv = delivery_weeks(cal, mv.seq[shown], mv.sec[shown], rng)
    j = shown[sel]
    oid = _optional_order_ids(order_id, mv.order[j])
    return table(FEEDS["account_movements"], {
        "movement_id": mid[j], "bank_code": bank[j], "account_id": account[j], "institution_id": iid[j],
        "booked_at": mv.sec[j], "kind": np.array(MOVEMENT_KINDS)[mv.kind[j]], "amount_fen": mv.amount[j],
        "order_id": oid, "balance_after_fen": mv.balance[j],
    }, dlv), breaks


def _optional_order_ids(order_id: pa.Array, order: np.ndarray) -> np.ndarray:
    """Order ids where `order` >= 0, null where it is -1."""
    if not len(order_id):
        return np.full(len(order), None, dtype=object)
    return np.where(order >= 0, np.asarray(order_id.take(np.maximum(order, 0)), dtype=object), None)


def _iso(sec: int) -> str:
    d = iso_date(sec // DAY)
    s = int(sec % DAY)
    return f"{d.isoformat()}T{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}+08:00"


def _iso_week(sec: int) -> str:
    y, w, _ = iso_date(sec // DAY).isocalendar()
    return f"{y}-W{w:02d}"
