-- Step 1: the ISO weeks from the first to the last week with activity (filings only when no feed has rows).
-- Read from the staging tables, so the calendar spans the whole history even when only recent weeks are
-- recomputed (a min/max scan, no rows kept).
CREATE OR REPLACE TEMP TABLE ind_calendar AS
WITH paid_orders AS (
    SELECT order_id, paid_at, _delivery_date FROM staging.orders WHERE status = 'paid'
),
other_times AS (
    SELECT ind_known_at(paid_at, _delivery_date) AS known_at FROM paid_orders
    UNION ALL SELECT ind_known_at(requested_at, _delivery_date) FROM staging.refunds
    UNION ALL SELECT ind_known_at(booked_at, _delivery_date) FROM staging.account_movements
    UNION ALL SELECT ind_known_at(received_at, _delivery_date) FROM staging.complaints
    UNION ALL SELECT ind_known_at(rated_at, _delivery_date) FROM staging.evaluations
),
other_bounds AS (
    SELECT min(known_at) AS first_at, max(known_at) AS last_at FROM other_times
),
activity_times AS (
    SELECT known_at FROM other_times
    UNION ALL
    -- only a consumption outside the other feeds' span can move a bound: the match on paid orders (most of
    -- this step's time over the whole feed) is made for those few
    SELECT ind_known_at(c.consumed_at, c._delivery_date)
    FROM staging.consumptions AS c, other_bounds AS b
    WHERE (b.first_at IS NULL
        OR ind_known_at(c.consumed_at, c._delivery_date) NOT BETWEEN b.first_at AND b.last_at)
        AND c.order_id IN (SELECT order_id FROM paid_orders)
),
filing_dates AS (
    SELECT ind_known_at(record_date::TIMESTAMPTZ, _delivery_date)::DATE AS known_date FROM staging.institutions
),
bounds AS (
    SELECT
        coalesce(
            date_trunc('week', min(known_at)), (SELECT min(date_trunc('week', known_date)) FROM filing_dates)
        )::DATE AS first_week,
        coalesce(
            date_trunc('week', max(known_at)), (SELECT max(date_trunc('week', known_date)) FROM filing_dates)
        )::DATE AS last_week
    FROM activity_times
),
weeks AS (
    SELECT range::DATE AS week_start
    FROM bounds, range(first_week, last_week + INTERVAL 1 DAY, INTERVAL 7 DAY)
)
SELECT
    strftime(week_start, '%G-W%V') AS week,
    row_number() OVER (ORDER BY week_start) AS week_no,
    count(*) OVER () AS n_weeks,
    week_start,
    week_start + 6 AS week_end,
    -- Sunday 24:00 Asia/Shanghai: rows known at or after this instant belong to later weeks
    (week_start + 7)::TIMESTAMP::TIMESTAMPTZ AS cutoff
FROM weeks;

-- The grid key: rows numbered institution by institution, week by week (no sort of the grid needed).
CREATE OR REPLACE TEMP MACRO ind_grid_key(institution_no, week_no, n_weeks) AS (institution_no - 1) * n_weeks + week_no;
