-- prepaid_liability_fen: paid minus consumed value minus paid refunds, cumulative to week end, per order never
-- below 0 (ind_weekly.liability_settled_fen caps consumed + refunded at each order's paid_fen).
SELECT
    k,
    round(sum(paid_fen - liability_settled_fen) OVER (w ROWS UNBOUNDED PRECEDING)) AS prepaid_liability_fen
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
