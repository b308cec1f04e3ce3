-- unresolved_complaints: complaints received and not resolved or rejected by week end
-- (running sum of ind_weekly.open_complaints_delta).
SELECT
    k,
    sum(open_complaints_delta) OVER (w ROWS UNBOUNDED PRECEDING) AS unresolved_complaints
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
