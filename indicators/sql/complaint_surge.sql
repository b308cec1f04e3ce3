-- complaint_surge: complaints this week / max(1, mean weekly complaints of the 8 previous weeks).
SELECT
    k,
    complaints / greatest(1, coalesce(avg(complaints) OVER (w ROWS BETWEEN 8 PRECEDING AND 1 PRECEDING), 0)) AS complaint_surge
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
