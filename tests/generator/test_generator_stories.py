"""Planted stories, personal data, determinism and the scales."""

from __future__ import annotations

import csv
import hashlib
import re
from datetime import date
from pathlib import Path

import pytest

from data_contracts.identifiers import is_valid_resident_id
from tutorwatch.generator import generate
from tutorwatch.generator.institutions import STORIES


def stories(out: Path) -> list[dict]:
    with (out / "truth" / "institutions.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_every_story_kind_is_present_with_dates(tiny):
    rows = stories(tiny)
    assert list(rows[0]) == ["institution_id", "province_code", "story", "story_start", "closure_date",
                             "closure_reason", "strength"]
    assert {r["story"] for r in rows} == set(STORIES)
    for r in rows:
        closes = r["story"] in ("discount_abscond", "slow_bleed", "fund_diversion", "normal_closure")
        assert bool(r["closure_date"]) == (closes or bool(r["closure_reason"]))
        if r["story"] in ("discount_abscond", "slow_bleed", "fund_diversion"):
            assert r["closure_reason"] == "abnormal"
            weeks = (date.fromisoformat(r["closure_date"]) - date.fromisoformat(r["story_start"])).days / 7
            assert 4 <= weeks <= 17.5
        if r["story"] == "normal_closure":
            assert r["closure_reason"] == "normal"


def test_closures_are_filed_and_the_feeds_go_silent_while_complaints_spike(db, tiny):
    db.execute(f"CREATE OR REPLACE TABLE stories AS SELECT * FROM read_csv('{tiny / 'truth' / 'institutions.csv'}')")
    rows = db.execute("""
        WITH abnormal AS (SELECT institution_id, closure_date FROM stories
                          WHERE closure_reason = 'abnormal' AND closure_date < DATE '2025-11-17')
        SELECT a.institution_id,
            (SELECT count(DISTINCT i.record_date) FROM institutions i
                WHERE i.institution_id = a.institution_id AND i.event = 'closed'
                AND i.closure_reason = 'abnormal' AND i.record_date >= a.closure_date),
            (SELECT count(*) FROM orders o WHERE o.institution_id = a.institution_id AND o.paid_at >= a.closure_date),
            (SELECT count(*) FROM consumptions c WHERE c.institution_id = a.institution_id
                AND c.consumed_at >= a.closure_date AND c._bad IS NULL),
            (SELECT count(*) FROM account_movements m WHERE m.institution_id = a.institution_id
                AND m.booked_at >= a.closure_date AND m._bad IS NULL),
            (SELECT count(DISTINCT complaint_id) FROM complaints c WHERE c.institution_id = a.institution_id
                AND c.received_at >= a.closure_date AND c.category = 'closure_or_absconding')
        FROM abnormal a""").fetchall()
    assert len(rows) >= 3
    for iid, filed, orders, classes, movements, complaints in rows:
        assert filed == 1 and orders == classes == movements == 0, iid
    assert sum(r[5] for r in rows) >= 2 * len(rows)


def test_summer_is_busier_than_spring_and_golden_week_is_quiet(db):
    by_month = dict(db.execute("""SELECT month(consumed_at), sum(class_hours) FROM
        (SELECT DISTINCT consumption_id, consumed_at, class_hours FROM consumptions WHERE _bad IS NULL)
        GROUP BY 1""").fetchall())
    assert by_month[7] + by_month[8] > 1.3 * (by_month[5] + by_month[6])
    sales = dict(db.execute("""SELECT strftime(paid_at, '%m-%d') >= '10-01' AND strftime(paid_at, '%m-%d') <= '10-07',
        count(DISTINCT order_id) / count(DISTINCT paid_at::DATE) FROM orders
        WHERE _bad IS NULL AND paid_at >= DATE '2025-09-08' AND paid_at < DATE '2025-11-03' GROUP BY 1""").fetchall())
    assert sales[True] < 0.8 * sales[False]


def test_discount_abscond_sells_cheap_and_big_before_it_closes(db, tiny):
    db.execute(f"CREATE OR REPLACE TABLE stories AS SELECT * FROM read_csv('{tiny / 'truth' / 'institutions.csv'}')")
    share, over = db.execute("""
        SELECT avg(1 - paid_fen / list_price_fen),
               avg((class_hours > 60 OR course_end > course_start + INTERVAL 3 MONTH)::INT)
        FROM (SELECT DISTINCT order_id, institution_id, paid_fen, list_price_fen, class_hours, course_start,
              course_end, paid_at FROM orders WHERE _bad IS NULL) o JOIN stories s USING (institution_id)
        WHERE s.story = 'discount_abscond' AND o.paid_at >= s.story_start""").fetchone()
    base_share, base_over = db.execute("""
        SELECT avg(1 - paid_fen / list_price_fen),
               avg((class_hours > 60 OR course_end > course_start + INTERVAL 3 MONTH)::INT)
        FROM orders o JOIN stories s USING (institution_id) WHERE s.story = 'healthy' AND o._bad IS NULL""").fetchone()
    assert share > base_share + 0.08 and over > 2 * base_over


def test_personal_numbers_are_all_listed_in_truth(db, tiny):
    planted = set((tiny / "truth" / "pii_planted.txt").read_text(encoding="utf-8").split())
    phones = {r[0] for r in db.execute(
        "SELECT DISTINCT parent_phone FROM orders UNION SELECT parent_phone FROM complaints").fetchall()}
    assert phones and phones <= planted
    assert all(re.fullmatch(r"1[3-9]\d{9}", p) for p in phones)
    texts = [r[0] for r in db.execute("SELECT DISTINCT text FROM complaints").fetchall()]
    in_text = {m for t in texts for m in re.findall(r"(?<!\d)1[3-9]\d{9}(?!\d)", t)}
    ids = {m for t in texts for m in re.findall(r"\d{17}[\dX]", t)}
    assert in_text and in_text <= planted
    assert ids and ids <= planted and all(is_valid_resident_id(i) for i in ids)
    assert any("跑路" in t or "关门" in t or "停课" in t for t in texts)


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    args = {"scale": "demo", "weeks": 14, "institutions": 80, "start": "2025-06-02"}
    generate(seed=3, out=tmp_path / "a", **args)
    generate(seed=3, out=tmp_path / "b", **args)
    generate(seed=4, out=tmp_path / "c", **args)
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert len(a) > 100 and a == b
    assert a["truth/institutions.csv"] != c["truth/institutions.csv"]


def test_national_scale_streams_chunks_and_delivers_bank_parquet(tmp_path, reader):
    summary = generate("national", weeks=6, seed=5, out=tmp_path, institutions=240, chunk=80, start="2025-09-01")
    assert "240 institutions" in summary
    bank = reader.data_files(tmp_path / "landing", "account_movements")
    assert bank and all(p.suffix == ".parquet" for p in bank)
    ids = [i for p in bank for i in reader.read_file(p).column("movement_id").to_pylist()]
    chunks = {i[1:4] for i in ids}
    assert chunks == {"001", "002", "003"}
    orders = [i for p in reader.data_files(tmp_path / "landing", "orders")
              for i in reader.read_file(p).column("order_id").to_pylist()]
    assert {i[1:4] for i in orders} == {"001", "002", "003"}


def test_start_must_be_a_monday(tmp_path):
    with pytest.raises(ValueError, match="Monday"):
        generate(weeks=4, institutions=50, out=tmp_path, start="2025-03-04")


def test_cli_generate_prints_the_summary(tmp_path, capsys):
    from tutorwatch.cli import main

    assert main(["generate", "--scale", "demo", "--weeks", "2", "--seed", "1", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "2,000 institutions, 2 weeks from 2025-04-14" in printed
    assert (tmp_path / "landing" / "orders" / "orders_20250421.csv").exists() or \
        (tmp_path / "landing" / "orders" / "orders_20250422.csv").exists()
