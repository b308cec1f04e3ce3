-- median_refund_days: median days from request to payment of refunds paid in the 4 weeks ending at week end.
WITH paid_refunds AS (
    SELECT
        institution_id,
        paid_week,
        epoch(paid_at - requested_at) / 86400 AS days
    FROM ind_refunds
    WHERE paid_week IS NOT NULL
),
last_weeks AS (
    SELECT r.institution_id, c.week_start, median(r.days) AS median_refund_days
    FROM paid_refunds AS r
    INNER JOIN ind_calendar AS c ON r.paid_week BETWEEN c.week_start - 21 AND c.week_start
    GROUP BY ALL
)
SELECT s.k, t.median_refund_days
FROM last_weeks AS t
INNER JOIN ind_state AS s USING (institution_id, week_start)
