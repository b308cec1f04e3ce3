-- reserve_shortfall_fen: reserve required by the filing minus reserve held (reserve_in - reserve_out so far).
SELECT
    k,
    coalesce(reserve_required_fen, 0) - sum(reserve_net_fen) OVER (w ROWS UNBOUNDED PRECEDING) AS reserve_shortfall_fen
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
