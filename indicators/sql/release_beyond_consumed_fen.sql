-- release_beyond_consumed_fen: cumulative releases minus cumulative consumed value; > 0 = paid out early.
SELECT
    k,
    round(sum(released_fen - consumed_fen) OVER (w ROWS UNBOUNDED PRECEDING)) AS release_beyond_consumed_fen
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
