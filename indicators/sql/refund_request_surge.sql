-- refund_request_surge: refund requests this week / max(1, mean weekly refund requests of the 8 previous weeks).
SELECT
    k,
    refund_requests / greatest(1, coalesce(avg(refund_requests) OVER (w ROWS BETWEEN 8 PRECEDING AND 1 PRECEDING), 0)) AS refund_request_surge
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
