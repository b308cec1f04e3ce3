-- liability_runway_weeks: prepaid liability / mean weekly consumed value of the 4 weeks ending at week end;
-- NULL without liability, capped at 520 weeks (also when nothing was consumed).
WITH delivery AS (
    SELECT k, sum(consumed_fen) OVER (w ROWS 3 PRECEDING) / 4 AS weekly_delivered_fen
    FROM ind_weekly
    WINDOW w AS (PARTITION BY institution_no ORDER BY k)
)
SELECT
    k,
    CASE
        WHEN l.prepaid_liability_fen = 0 THEN NULL
        WHEN d.weekly_delivered_fen = 0 THEN 520
        ELSE least(l.prepaid_liability_fen / d.weekly_delivered_fen, 520)
    END AS liability_runway_weeks
FROM delivery AS d
INNER JOIN prepaid_liability_fen AS l USING (k)
