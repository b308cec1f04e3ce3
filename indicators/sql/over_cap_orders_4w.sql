-- over_cap_orders_4w: orders over 60 class hours or 3 months paid in the 4 weeks ending at week end.
SELECT
    k,
    sum(over_cap_orders) OVER (w ROWS 3 PRECEDING) AS over_cap_orders_4w
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
