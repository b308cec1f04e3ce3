"""National scale: 150,000 institutions x 52 weeks on 2 cores (`make bench`; TUTORWATCH_BENCH_INSTITUTIONS to shrink).

Every institution sells one 20-hour order of 20000 fen each Monday (deposited in its supervision account)
and consumes 5 hours of it on Thursday, so at the end of week w (0-based) the liability is
15000 * (w + 1) and the balance 20000 * (w + 1).
"""

import os
import time

import pytest

from indicators.compute import compute_institution_week_indicators
from pipelines.warehouse import connect, create_staging_tables

WEEKS = 52


def _generate(con, n: int) -> None:
    create_staging_tables(con)
    con.execute(f"""
        INSERT INTO staging.institutions (institution_id, record_date, event, name, province_code, county_code)
        SELECT 'I' || lpad(i::VARCHAR, 17, '0'), DATE '2025-01-01', 'registered', 'n' || i, '31', '310101'
        FROM range({n}) AS t(i)""")
    con.execute(f"""
        INSERT INTO staging.orders (order_id, institution_id, list_price_fen, paid_fen, class_hours, course_start,
                                    course_end, paid_at, status)
        SELECT 'o' || i || '_' || w, 'I' || lpad(i::VARCHAR, 17, '0'), 20000, 20000, 20, DATE '2026-01-05',
               DATE '2026-02-01', TIMESTAMPTZ '2026-01-05 10:00:00+08' + to_days((7 * w)::INT), 'paid'
        FROM range({n}) AS t(i), range({WEEKS}) AS s(w)""")
    con.execute("""
        INSERT INTO staging.consumptions (consumption_id, order_id, institution_id, consumed_at, class_hours)
        SELECT 'c' || order_id, order_id, institution_id, paid_at + INTERVAL 3 DAY, 5 FROM staging.orders""")
    con.execute("""
        INSERT INTO staging.account_movements (movement_id, bank_code, account_id, institution_id, booked_at, kind,
                                               amount_fen, balance_after_fen)
        SELECT 'm' || order_id, 'B1', 'A' || institution_id, institution_id, paid_at, 'deposit', paid_fen,
               20000 * row_number() OVER (PARTITION BY institution_id ORDER BY paid_at)
        FROM staging.orders""")


@pytest.mark.slow
def test_national_scale(tmp_path):
    n = int(os.environ.get("TUTORWATCH_BENCH_INSTITUTIONS", "150000"))
    con = connect(tmp_path / "national.duckdb")
    _generate(con, n)
    started = time.monotonic()
    rows = compute_institution_week_indicators(con)
    elapsed = time.monotonic() - started
    print(f"\ninstitution_week_indicators: {rows} rows in {elapsed:.0f} s")
    assert rows == n * WEEKS
    last = con.execute("""
        SELECT prepaid_liability_fen, supervised_balance_fen, coverage_ratio, orders_feed_silence_weeks
        FROM marts.institution_week_indicators WHERE week = '2026-W53' OR week = '2027-W01'
        ORDER BY institution_id LIMIT 1""").fetchone()
    assert last == (15000 * WEEKS, 20000 * WEEKS, pytest.approx(4 / 3), 0)
    assert elapsed < 900
