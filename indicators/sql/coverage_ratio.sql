-- coverage_ratio: supervised balance / prepaid liability; NULL when there is no liability to cover.
SELECT
    l.k,
    b.supervised_balance_fen / nullif(l.prepaid_liability_fen, 0) AS coverage_ratio
FROM prepaid_liability_fen AS l
INNER JOIN supervised_balance_fen AS b USING (k)
