-- discount_depth: 1 - paid / list price over orders paid in the 4 weeks ending at week end (value-weighted).
SELECT
    k,
    1 - sum(paid_fen) OVER (w ROWS 3 PRECEDING) / nullif(sum(list_price_fen) OVER (w ROWS 3 PRECEDING), 0)
        AS discount_depth
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
