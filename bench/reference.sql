-- The benchmark's reference: the seven core indicators per institution and ISO week, written by hand in one
-- statement over the converted Parquet files (views orders, consumptions, refunds, account_movements,
-- complaints, evaluations, institutions). Same definitions as the mart (docs/indicators.md).
WITH paid_orders AS (
    SELECT order_id, institution_id, paid_fen, class_hours, paid_at, date_trunc('week', paid_at)::DATE AS week_start
    FROM orders
    WHERE status = 'paid' AND paid_fen > 0 AND class_hours > 0
),
valued_consumptions AS (
    SELECT
        c.institution_id, c.order_id, c.consumption_id, c.consumed_at,
        o.paid_fen * c.class_hours / o.class_hours AS value_fen,
        date_trunc('week', c.consumed_at)::DATE AS week_start
    FROM consumptions AS c
    INNER JOIN paid_orders AS o USING (order_id)
    WHERE c.class_hours > 0
),
valid_movements AS (
    SELECT * FROM account_movements WHERE amount_fen > 0 AND balance_after_fen >= 0
),
calendar AS (
    SELECT range::DATE AS week_start
    FROM (
        SELECT min(t) AS first_at, max(t) AS last_at FROM (
            SELECT paid_at AS t FROM paid_orders
            UNION ALL SELECT consumed_at FROM valued_consumptions
            UNION ALL SELECT requested_at FROM refunds
            UNION ALL SELECT booked_at FROM valid_movements
            UNION ALL SELECT received_at FROM complaints
            UNION ALL SELECT rated_at FROM evaluations
        )
    ), range(date_trunc('week', first_at)::DATE, date_trunc('week', last_at)::DATE + 1, INTERVAL 7 DAY)
),
grid AS (
    SELECT i.institution_id, c.week_start
    FROM (SELECT DISTINCT institution_id FROM institutions) AS i
    CROSS JOIN calendar AS c
),
sales AS (
    SELECT institution_id, week_start, sum(paid_fen) AS paid_fen
    FROM paid_orders GROUP BY ALL
),
settlements AS (
    -- consumed value and paid refunds per order in time order, capped at the order's paid_fen
    SELECT
        institution_id, date_trunc('week', event_at)::DATE AS week_start,
        sum(least(running, paid_fen) - least(running - amount_fen, paid_fen)) AS settled_fen
    FROM (
        SELECT e.*, o.paid_fen,
            sum(amount_fen) OVER (PARTITION BY order_id ORDER BY event_at, tie, id) AS running
        FROM (
            SELECT institution_id, order_id, consumed_at AS event_at, 0 AS tie, consumption_id AS id, value_fen AS amount_fen
            FROM valued_consumptions
            UNION ALL
            SELECT institution_id, order_id, paid_at, 1, refund_id, requested_fen
            FROM refunds WHERE status = 'paid' AND paid_at IS NOT NULL
        ) AS e
        INNER JOIN paid_orders AS o USING (order_id)
    )
    GROUP BY ALL
),
consumed AS (
    SELECT institution_id, week_start, sum(value_fen) AS consumed_fen
    FROM valued_consumptions GROUP BY ALL
),
releases AS (
    SELECT institution_id, date_trunc('week', booked_at)::DATE AS week_start, sum(amount_fen) AS released_fen
    FROM valid_movements WHERE kind = 'release' GROUP BY ALL
),
balances AS (
    -- each account's closing balance of the week minus the previous one: a running sum gives the total
    SELECT institution_id, week_start, sum(balance - coalesce(previous, 0)) AS balance_change_fen
    FROM (
        SELECT institution_id, week_start, balance,
            lag(balance) OVER (PARTITION BY bank_code, account_id ORDER BY week_start) AS previous
        FROM (
            SELECT institution_id, bank_code, account_id, date_trunc('week', booked_at)::DATE AS week_start,
                arg_max(balance_after_fen, (booked_at, movement_id)) AS balance
            FROM valid_movements
            GROUP BY ALL
        )
    )
    GROUP BY ALL
),
refund_requests AS (
    SELECT institution_id, date_trunc('week', requested_at)::DATE AS week_start, count(*) AS requests
    FROM refunds GROUP BY ALL
),
complaints_received AS (
    SELECT institution_id, date_trunc('week', received_at)::DATE AS week_start, count(*) AS complaints
    FROM complaints GROUP BY ALL
),
weekly AS (
    SELECT
        g.institution_id, g.week_start,
        coalesce(s.paid_fen, 0) AS paid_fen,
        coalesce(st.settled_fen, 0) AS settled_fen,
        coalesce(c.consumed_fen, 0) AS consumed_fen,
        coalesce(r.released_fen, 0) AS released_fen,
        coalesce(b.balance_change_fen, 0) AS balance_change_fen,
        coalesce(rr.requests, 0) AS requests,
        coalesce(cr.complaints, 0) AS complaints
    FROM grid AS g
    LEFT JOIN sales AS s USING (institution_id, week_start)
    LEFT JOIN settlements AS st USING (institution_id, week_start)
    LEFT JOIN consumed AS c USING (institution_id, week_start)
    LEFT JOIN releases AS r USING (institution_id, week_start)
    LEFT JOIN balances AS b USING (institution_id, week_start)
    LEFT JOIN refund_requests AS rr USING (institution_id, week_start)
    LEFT JOIN complaints_received AS cr USING (institution_id, week_start)
),
indicators AS (
    SELECT
        institution_id,
        strftime(week_start, '%G-W%V') AS week,
        round(sum(paid_fen - settled_fen) OVER so_far) AS prepaid_liability_fen,
        sum(balance_change_fen) OVER so_far AS supervised_balance_fen,
        round(sum(released_fen - consumed_fen) OVER so_far) AS release_beyond_consumed_fen,
        paid_fen / nullif(median(paid_fen) OVER previous_8, 0) AS sales_spike_ratio,
        requests / greatest(1, coalesce(avg(requests) OVER previous_8, 0)) AS refund_request_surge,
        complaints / greatest(1, coalesce(avg(complaints) OVER previous_8, 0)) AS complaint_surge
    FROM weekly
    WINDOW
        so_far AS (PARTITION BY institution_id ORDER BY week_start ROWS UNBOUNDED PRECEDING),
        previous_8 AS (PARTITION BY institution_id ORDER BY week_start ROWS BETWEEN 8 PRECEDING AND 1 PRECEDING)
)
SELECT
    institution_id, week,
    prepaid_liability_fen::DOUBLE AS prepaid_liability_fen,
    supervised_balance_fen::DOUBLE AS supervised_balance_fen,
    supervised_balance_fen / nullif(prepaid_liability_fen, 0) AS coverage_ratio,
    release_beyond_consumed_fen::DOUBLE AS release_beyond_consumed_fen,
    sales_spike_ratio, refund_request_surge, complaint_surge
FROM indicators
