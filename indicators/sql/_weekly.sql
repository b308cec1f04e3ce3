-- Step 4: per institution and week, the sums and counts the indicators are built from (0 when none), on the
-- dense grid of ind_state. Indicator SQL windows over these rows (PARTITION BY institution_no ORDER BY k).
CREATE OR REPLACE TEMP TABLE ind_weekly AS
WITH order_weeks AS (
    SELECT
        institution_id, week_start,
        count(*) AS orders,
        sum(paid_fen) AS paid_fen,
        sum(list_price_fen) AS list_price_fen,
        count(*) FILTER (WHERE is_over_cap) AS over_cap_orders
    FROM ind_orders
    GROUP BY ALL
),
consumption_weeks AS (
    SELECT
        institution_id, week_start,
        count(*) AS consumptions,
        sum(hours) AS consumed_hours,
        sum(value_fen) AS consumed_fen
    FROM ind_consumptions
    GROUP BY ALL
),
liability_events AS (
    -- per order, consumed value and paid refunds in time order; together they cannot exceed paid_fen
    SELECT order_id, institution_id, known_at, 0 AS tie, consumption_id AS id, value_fen AS amount_fen
    FROM ind_consumptions
    UNION ALL
    SELECT r.order_id, r.institution_id, r.paid_known_at, 1, r.refund_id, r.requested_fen
    FROM ind_refunds AS r
    WHERE r.paid_known_at IS NOT NULL
),
liability_running AS (
    SELECT
        e.*,
        o.paid_fen,
        sum(e.amount_fen) OVER (PARTITION BY e.order_id ORDER BY e.known_at, e.tie, e.id) AS running_fen
    FROM liability_events AS e
    INNER JOIN ind_orders AS o USING (order_id)
),
liability_weeks AS (
    SELECT
        institution_id,
        date_trunc('week', known_at)::DATE AS week_start,
        sum(least(running_fen, paid_fen) - least(running_fen - amount_fen, paid_fen)) AS liability_settled_fen
    FROM liability_running
    GROUP BY ALL
),
refund_request_weeks AS (
    SELECT institution_id, requested_week AS week_start, count(*) AS refund_requests
    FROM ind_refunds
    GROUP BY ALL
),
overdue_refund_events AS (
    -- a request becomes overdue on the 6th working day (Mon-Fri) after its request date; it counts from the
    -- week it is both known and overdue until the week it is closed
    SELECT
        institution_id,
        greatest(
            requested_week,
            date_trunc('week', requested_at::DATE + CASE isodow(requested_at::DATE) WHEN 5 THEN 10 WHEN 6 THEN 9 ELSE 8 END)
        )::DATE AS overdue_week,
        closed_week
    FROM ind_refunds
),
overdue_refund_weeks AS (
    SELECT institution_id, week_start, sum(delta) AS overdue_refunds_delta
    FROM (
        SELECT institution_id, overdue_week AS week_start, 1 AS delta FROM overdue_refund_events
        UNION ALL
        SELECT institution_id, greatest(overdue_week, closed_week), -1
        FROM overdue_refund_events WHERE closed_week IS NOT NULL
    )
    GROUP BY ALL
),
complaint_weeks AS (
    SELECT
        institution_id, week_start,
        count(*) AS complaints,
        count(*) FILTER (WHERE is_closure_keyword) AS closure_keyword_complaints
    FROM ind_complaints
    GROUP BY ALL
),
open_complaint_weeks AS (
    SELECT institution_id, week_start, sum(delta) AS open_complaints_delta
    FROM (
        SELECT institution_id, week_start, 1 AS delta FROM ind_complaints
        UNION ALL
        SELECT institution_id, greatest(week_start, closed_week), -1 FROM ind_complaints WHERE closed_week IS NOT NULL
    )
    GROUP BY ALL
),
evaluation_weeks AS (
    SELECT institution_id, week_start, sum(stars) AS stars, count(*) AS ratings
    FROM ind_evaluations
    GROUP BY ALL
),
movement_weeks AS (
    SELECT
        institution_id, week_start,
        count(*) AS movements,
        coalesce(sum(amount_fen) FILTER (WHERE kind = 'release'), 0) AS released_fen,
        coalesce(sum(amount_fen) FILTER (WHERE kind = 'reserve_in'), 0)
            - coalesce(sum(amount_fen) FILTER (WHERE kind = 'reserve_out'), 0) AS reserve_net_fen,
        coalesce(sum(amount_fen) FILTER (WHERE kind = 'adjustment_out'), 0) AS adjustment_out_fen
    FROM ind_movements
    GROUP BY ALL
),
account_week_balances AS (
    -- each account's balance after its last movement of the week
    SELECT institution_id, bank_code, account_id, week_start, balance_after_fen
    FROM ind_movements
    QUALIFY row_number() OVER (
        PARTITION BY institution_id, bank_code, account_id, week_start ORDER BY booked_at DESC, movement_id DESC
    ) = 1
),
balance_weeks AS (
    -- week-on-week change of the summed account balances; a running sum gives the balance at week end
    SELECT institution_id, week_start, sum(balance_change_fen) AS balance_change_fen
    FROM (
        SELECT
            institution_id, week_start,
            balance_after_fen - coalesce(
                lag(balance_after_fen) OVER (PARTITION BY institution_id, bank_code, account_id ORDER BY week_start), 0
            ) AS balance_change_fen
        FROM account_week_balances
    )
    GROUP BY ALL
),
break_weeks AS (
    SELECT b.institution_id, c.week_start, count(*) AS continuity_breaks
    FROM staging.bank_continuity_breaks AS b
    INNER JOIN ind_calendar AS c ON c.week = b.week
    GROUP BY ALL
),
activity AS (
    -- all of the above in one row per institution and week, keyed like the grid
    SELECT ind_grid_key(i.institution_no, c.week_no, c.n_weeks) AS k, a.*
    FROM (
        SELECT * FROM order_weeks
        UNION ALL BY NAME SELECT * FROM consumption_weeks
        UNION ALL BY NAME SELECT * FROM liability_weeks
        UNION ALL BY NAME SELECT * FROM refund_request_weeks
        UNION ALL BY NAME SELECT * FROM overdue_refund_weeks
        UNION ALL BY NAME SELECT * FROM complaint_weeks
        UNION ALL BY NAME SELECT * FROM open_complaint_weeks
        UNION ALL BY NAME SELECT * FROM evaluation_weeks
        UNION ALL BY NAME SELECT * FROM movement_weeks
        UNION ALL BY NAME SELECT * FROM balance_weeks
        UNION ALL BY NAME SELECT * FROM break_weeks
    ) AS a
    INNER JOIN ind_institutions AS i USING (institution_id)
    INNER JOIN ind_calendar AS c USING (week_start)
),
activity_weeks AS (
    -- each column comes from one of the CTEs above, which have one row per institution and week
    SELECT k, max(COLUMNS(* EXCLUDE (k, institution_id, week_start)))
    FROM activity
    GROUP BY k
)
SELECT
    -- grid keys and the filing values the weekly indicators need
    s.k,
    s.institution_no,
    s.week_start,
    s.first_filed,
    s.reserve_required_fen,
    -- weekly sums and counts, 0 when none; integers as BIGINT (sum() gives HUGEINT, slow in windows)
    coalesce(COLUMNS(a.* EXCLUDE (k, consumed_fen, liability_settled_fen)), 0)::BIGINT,
    coalesce(a.consumed_fen, 0) AS consumed_fen,
    coalesce(a.liability_settled_fen, 0) AS liability_settled_fen
FROM ind_state AS s
LEFT JOIN activity_weeks AS a USING (k);
