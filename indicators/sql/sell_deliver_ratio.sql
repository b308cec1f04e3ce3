-- sell_deliver_ratio: paid / consumed value over the 4 weeks ending at week end; NULL when both are 0,
-- capped at 100 (also when something was sold and nothing consumed).
WITH last_weeks AS (
    SELECT
        k,
        sum(paid_fen) OVER (w ROWS 3 PRECEDING) AS sold_fen,
        sum(consumed_fen) OVER (w ROWS 3 PRECEDING) AS delivered_fen
    FROM ind_weekly
    WINDOW w AS (PARTITION BY institution_no ORDER BY k)
)
SELECT
    k,
    CASE
        WHEN sold_fen = 0 AND delivered_fen = 0 THEN NULL
        WHEN delivered_fen = 0 THEN 100
        ELSE least(sold_fen / delivered_fen, 100)
    END AS sell_deliver_ratio
FROM last_weeks
