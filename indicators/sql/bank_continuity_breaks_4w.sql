-- bank_continuity_breaks_4w: continuity breaks reported for the 4 weeks ending at this week.
SELECT
    k,
    sum(continuity_breaks) OVER (w ROWS 3 PRECEDING) AS bank_continuity_breaks_4w
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
