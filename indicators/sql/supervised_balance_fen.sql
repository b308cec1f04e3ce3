-- supervised_balance_fen: balance after the latest movement of each supervision account by week end, summed.
SELECT
    k,
    sum(balance_change_fen) OVER (w ROWS UNBOUNDED PRECEDING) AS supervised_balance_fen
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
