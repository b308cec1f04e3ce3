-- consumption_drop: 1 - this week's consumed hours / mean weekly consumed hours of the 4 previous weeks.
SELECT
    k,
    1 - consumed_hours / nullif(avg(consumed_hours) OVER (w ROWS BETWEEN 4 PRECEDING AND 1 PRECEDING), 0)
        AS consumption_drop
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
