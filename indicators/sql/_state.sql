-- Step 3: every filed institution x every calendar week of the grid (from ind_window_start(); a dense grid, so
-- window frames count weeks), with the filing state at the week end (latest non-null value on or before it)
-- and whether it is active.
CREATE OR REPLACE TEMP TABLE ind_institutions AS
SELECT institution_id, row_number() OVER (ORDER BY institution_id) AS institution_no
FROM (SELECT DISTINCT institution_id FROM ind_filings);

CREATE OR REPLACE TEMP TABLE ind_state AS
WITH ordered_filings AS (
    -- a closure on the same day as another record is the later one
    SELECT
        *,
        min(known_date) OVER (PARTITION BY institution_id) AS first_filed,
        row_number() OVER (
            PARTITION BY institution_id ORDER BY known_date, is_terminal, record_date, event
        ) AS seq
    FROM ind_filings
    INNER JOIN ind_institutions USING (institution_id)
),
filled AS (
    SELECT
        -- ids and dates
        institution_id,
        institution_no,
        known_date,
        first_filed,
        seq,
        is_terminal,
        -- filing attributes: the latest non-null value so far
        last_value(name IGNORE NULLS) OVER w AS name,
        last_value(province_code IGNORE NULLS) OVER w AS province_code,
        last_value(county_code IGNORE NULLS) OVER w AS county_code,
        last_value(category IGNORE NULLS) OVER w AS category,
        last_value(mode IGNORE NULLS) OVER w AS mode,
        last_value(licence_expiry IGNORE NULLS) OVER w AS licence_expiry,
        last_value(site_lease_expiry IGNORE NULLS) OVER w AS site_lease_expiry,
        last_value(staff_count IGNORE NULLS) OVER w AS staff_count,
        last_value(staff_verified IGNORE NULLS) OVER w AS staff_verified,
        last_value(reserve_required_fen IGNORE NULLS) OVER w AS reserve_required_fen
    FROM ordered_filings
    WINDOW w AS (PARTITION BY institution_id ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
daily AS (
    -- one record per institution and day: the last one of the day
    SELECT * FROM filled
    QUALIFY row_number() OVER (PARTITION BY institution_id, known_date ORDER BY seq DESC) = 1
),
grid AS (
    -- integer keys: k (ind_grid_key) for the grid row, institution_no for the indicators' window partitions
    SELECT
        ind_grid_key(i.institution_no, c.week_no, c.n_weeks) AS k,
        i.institution_no,
        i.institution_id,
        c.week, c.week_start, c.week_end, c.cutoff
    FROM ind_institutions AS i
    CROSS JOIN ind_calendar AS c
    WHERE c.week_start >= ind_window_start()
),
at_week_end AS (
    SELECT
        g.*,
        d.first_filed,
        d.name, d.province_code, d.county_code, d.category, d.mode,
        d.licence_expiry, d.site_lease_expiry, d.staff_count, d.staff_verified, d.reserve_required_fen
    FROM grid AS g
    ASOF LEFT JOIN daily AS d ON d.institution_no = g.institution_no AND g.week_end >= d.known_date
),
before_week_start AS (
    SELECT g.k, d.is_terminal AS was_closed
    FROM grid AS g
    ASOF LEFT JOIN daily AS d ON d.institution_no = g.institution_no AND g.week_start - 1 >= d.known_date
)
SELECT
    e.*,
    e.first_filed <= e.week_end AND NOT coalesce(b.was_closed, false) AS is_active
FROM at_week_end AS e
INNER JOIN before_week_start AS b USING (k);
