-- Step 4: per institution and week, the sums and counts the indicators are built from (0 when none), on the
-- dense grid of ind_state from ind_rows_start() on (the weeks summed from the feeds' rows). Indicator SQL windows
-- over these rows (PARTITION BY institution_no ORDER BY k).
-- When the rows start after the first calendar week, each institution gets one carry row first (the week
-- before, ind_carry_week()) holding the sums of every earlier week, so running sums ("so far") are exact;
-- trailing windows of the recomputed weeks never reach it (compute.LOOKBACK_WEEKS). A refresh from stored
-- sums (ind_stored_sums(), `_stored_weekly`) builds no carry row here: the stored weeks before ind_rows_start()
-- take its place, and the per-order and per-account carry only settles the caps and balances of later weeks.

-- each account's balance after its last movement of each week summed from rows (a hash aggregate: (booked_at,
-- movement_id) is unique per account and never null); the written weeks' are stored for the refresh's carry
CREATE OR REPLACE TEMP TABLE ind_account_weeks AS
SELECT
    institution_id, bank_code, account_id, week_start,
    arg_max(balance_after_fen, (booked_at, movement_id)) AS balance_after_fen
FROM ind_movements
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE ind_weekly AS
WITH grid AS (
    SELECT k, institution_no, institution_id, week_start, first_filed, reserve_required_fen
    FROM ind_state
    WHERE week_start >= ind_rows_start()
    UNION ALL
    SELECT
        ind_grid_key(i.institution_no, c.week_no - 1, c.n_weeks),
        i.institution_no,
        i.institution_id,
        ind_carry_week(),
        NULL,
        NULL
    FROM ind_institutions AS i
    CROSS JOIN ind_calendar AS c
    WHERE c.week_start = ind_rows_start() AND c.week_no > 1 AND NOT ind_stored_sums()
),
order_weeks AS (
    SELECT
        institution_id, week_start,
        count(*) AS orders,
        sum(paid_fen) AS paid_fen,
        sum(list_price_fen) AS list_price_fen,
        count(*) FILTER (WHERE is_over_cap) AS over_cap_orders,
        max(week_start) AS last_order_week
    FROM ind_orders
    GROUP BY ALL
    UNION ALL
    SELECT
        institution_id, ind_carry_week(),
        count(*),
        sum(paid_fen),
        sum(list_price_fen),
        count(*) FILTER (WHERE is_over_cap),
        date_trunc('week', max(known_at))::DATE
    FROM ind_all_orders
    WHERE known_at < ind_rows_since() AND NOT ind_stored_sums()
    GROUP BY ALL
),
consumption_weeks AS (
    SELECT
        institution_id, week_start,
        count(*) AS consumptions,
        sum(hours) AS consumed_hours,
        sum(value_fen) AS consumed_fen,
        max(week_start) AS last_class_week
    FROM ind_consumptions
    GROUP BY ALL
    UNION ALL
    SELECT institution_id, ind_carry_week(), sum(consumptions), sum(hours), sum(value_fen), max(last_week)
    FROM ind_consumption_carry
    WHERE NOT ind_stored_sums()
    GROUP BY ALL
),
liability_events AS (
    -- per order, consumed value and paid refunds in time order; together they cannot exceed paid_fen
    SELECT order_id, institution_id, known_at, 0 AS tie, consumption_id AS id, value_fen AS amount_fen
    FROM ind_consumptions
    UNION ALL
    SELECT r.order_id, r.institution_id, r.paid_known_at, 1, r.refund_id, r.requested_fen
    FROM ind_refunds AS r
    WHERE r.paid_week >= ind_rows_start()
    UNION ALL
    -- before the grid: one event per order (the cap telescopes, so one sum settles the same amount)
    SELECT order_id, institution_id, ind_carry_week()::TIMESTAMP::TIMESTAMPTZ, -1, '', sum(amount_fen)
    FROM (
        SELECT order_id, institution_id, value_fen AS amount_fen FROM ind_consumption_carry
        UNION ALL
        SELECT order_id, institution_id, requested_fen FROM ind_refunds WHERE paid_week < ind_rows_start()
    )
    GROUP BY ALL
),
liability_running AS (
    SELECT
        e.*,
        o.paid_fen,
        sum(e.amount_fen) OVER (PARTITION BY e.order_id ORDER BY e.known_at, e.tie, e.id) AS running_fen
    FROM liability_events AS e
    INNER JOIN ind_all_orders AS o USING (order_id)
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
    SELECT institution_id, greatest(requested_week, ind_carry_week()) AS week_start, count(*) AS refund_requests
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
    SELECT institution_id, greatest(week_start, ind_carry_week()) AS week_start, sum(delta) AS overdue_refunds_delta
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
        institution_id,
        greatest(week_start, ind_carry_week()) AS week_start,
        count(*) AS complaints,
        count(*) FILTER (WHERE is_closure_keyword) AS closure_keyword_complaints
    FROM ind_complaints
    GROUP BY ALL
),
open_complaint_weeks AS (
    SELECT institution_id, greatest(week_start, ind_carry_week()) AS week_start, sum(delta) AS open_complaints_delta
    FROM (
        SELECT institution_id, week_start, 1 AS delta FROM ind_complaints
        UNION ALL
        SELECT institution_id, greatest(week_start, closed_week), -1 FROM ind_complaints WHERE closed_week IS NOT NULL
    )
    GROUP BY ALL
),
evaluation_weeks AS (
    SELECT
        institution_id, week_start,
        sum(stars) AS stars,
        count(*) AS ratings,
        count(*) FILTER (WHERE stars <= 2) AS low_ratings
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
        coalesce(sum(amount_fen) FILTER (WHERE kind = 'adjustment_out'), 0) AS adjustment_out_fen,
        max(week_start) AS last_movement_week
    FROM ind_movements
    GROUP BY ALL
    UNION ALL
    SELECT
        institution_id, ind_carry_week(),
        sum(movements),
        sum(released_fen),
        sum(reserve_net_fen),
        0,
        max(last_week)
    FROM ind_movement_carry
    WHERE NOT ind_stored_sums()
    GROUP BY ALL
),
account_week_balances AS (
    -- each account's balance at the end of each week with a movement (of the weeks before the grid: the carry)
    SELECT * FROM ind_account_weeks
    UNION ALL
    SELECT institution_id, bank_code, account_id, ind_carry_week(), balance_after_fen
    FROM ind_movement_carry
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
    WHERE c.week_start >= ind_rows_start() AND ind_in_chunk(b.institution_id)
    GROUP BY ALL
)
SELECT
    -- grid keys and the filing values the weekly indicators need
    s.k,
    s.institution_no,
    s.institution_id,
    s.week_start,
    s.first_filed,
    s.reserve_required_fen,
    -- weekly sums and counts, 0 when none (BIGINT: sum() gives HUGEINT, slow in windows)
    coalesce(o.orders, 0)::BIGINT AS orders,
    coalesce(o.paid_fen, 0)::BIGINT AS paid_fen,
    coalesce(o.list_price_fen, 0)::BIGINT AS list_price_fen,
    coalesce(o.over_cap_orders, 0)::BIGINT AS over_cap_orders,
    coalesce(c.consumptions, 0)::BIGINT AS consumptions,
    coalesce(c.consumed_hours, 0)::BIGINT AS consumed_hours,
    coalesce(c.consumed_fen, 0) AS consumed_fen,
    coalesce(l.liability_settled_fen, 0) AS liability_settled_fen,
    coalesce(rr.refund_requests, 0)::BIGINT AS refund_requests,
    coalesce(ro.overdue_refunds_delta, 0)::BIGINT AS overdue_refunds_delta,
    coalesce(cw.complaints, 0)::BIGINT AS complaints,
    coalesce(cw.closure_keyword_complaints, 0)::BIGINT AS closure_keyword_complaints,
    coalesce(oc.open_complaints_delta, 0)::BIGINT AS open_complaints_delta,
    coalesce(e.stars, 0)::BIGINT AS stars,
    coalesce(e.ratings, 0)::BIGINT AS ratings,
    coalesce(e.low_ratings, 0)::BIGINT AS low_ratings,
    coalesce(m.movements, 0)::BIGINT AS movements,
    coalesce(m.released_fen, 0)::BIGINT AS released_fen,
    coalesce(m.reserve_net_fen, 0)::BIGINT AS reserve_net_fen,
    coalesce(m.adjustment_out_fen, 0)::BIGINT AS adjustment_out_fen,
    coalesce(bw.balance_change_fen, 0)::BIGINT AS balance_change_fen,
    coalesce(br.continuity_breaks, 0)::BIGINT AS continuity_breaks,
    -- the latest week with a movement, and with an order or a class, up to this row (silence indicators)
    m.last_movement_week,
    greatest(o.last_order_week, c.last_class_week) AS last_order_or_class_week
FROM grid AS s
LEFT JOIN order_weeks AS o USING (institution_id, week_start)
LEFT JOIN consumption_weeks AS c USING (institution_id, week_start)
LEFT JOIN liability_weeks AS l USING (institution_id, week_start)
LEFT JOIN refund_request_weeks AS rr USING (institution_id, week_start)
LEFT JOIN overdue_refund_weeks AS ro USING (institution_id, week_start)
LEFT JOIN complaint_weeks AS cw USING (institution_id, week_start)
LEFT JOIN open_complaint_weeks AS oc USING (institution_id, week_start)
LEFT JOIN evaluation_weeks AS e USING (institution_id, week_start)
LEFT JOIN movement_weeks AS m USING (institution_id, week_start)
LEFT JOIN balance_weeks AS bw USING (institution_id, week_start)
LEFT JOIN break_weeks AS br USING (institution_id, week_start);
