-- adjustment_out_fen_4w: adjustment_out movements in the 4 weeks ending at week end.
SELECT
    k,
    sum(adjustment_out_fen) OVER (w ROWS 3 PRECEDING) AS adjustment_out_fen_4w
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
