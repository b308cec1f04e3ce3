-- sales_spike_ratio: this week's paid_fen / median weekly paid_fen of the 8 previous weeks (NULL if that is 0).
SELECT
    k,
    paid_fen / nullif(list_median(list(paid_fen) OVER (w ROWS BETWEEN 8 PRECEDING AND 1 PRECEDING)), 0) AS sales_spike_ratio
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
