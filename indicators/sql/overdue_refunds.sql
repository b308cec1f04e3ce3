-- overdue_refunds: requests older than 5 working days and neither paid nor rejected by week end
-- (running sum of ind_weekly.overdue_refunds_delta: +1 when overdue, -1 when closed).
SELECT
    k,
    sum(overdue_refunds_delta) OVER (w ROWS UNBOUNDED PRECEDING) AS overdue_refunds
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
