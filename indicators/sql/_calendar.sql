-- Step 2: the ISO weeks from the first to the last week with activity (filings only when no feed has rows).
CREATE OR REPLACE TEMP TABLE ind_calendar AS
WITH activity_weeks AS (
    SELECT week_start FROM ind_orders
    UNION ALL SELECT week_start FROM ind_consumptions
    UNION ALL SELECT requested_week FROM ind_refunds
    UNION ALL SELECT week_start FROM ind_movements
    UNION ALL SELECT week_start FROM ind_complaints
    UNION ALL SELECT week_start FROM ind_evaluations
),
bounds AS (
    SELECT
        coalesce(min(week_start), (SELECT min(date_trunc('week', known_date)) FROM ind_filings))::DATE AS first_week,
        coalesce(max(week_start), (SELECT max(date_trunc('week', known_date)) FROM ind_filings))::DATE AS last_week
    FROM activity_weeks
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
