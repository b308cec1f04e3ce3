-- closure_keyword_complaints: closure/absconding complaints (category or keywords) in the 4 weeks ending at week end.
SELECT
    k,
    sum(closure_keyword_complaints) OVER (w ROWS 3 PRECEDING) AS closure_keyword_complaints
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
