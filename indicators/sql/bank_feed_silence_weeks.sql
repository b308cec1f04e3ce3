-- bank_feed_silence_weeks: whole weeks since the last week with a supervision account movement (0 = this week); with none ever, since the
-- registration week.
SELECT
    k,
    greatest(0, (
        week_start - coalesce(
            max(last_movement_week) OVER (w ROWS UNBOUNDED PRECEDING),
            date_trunc('week', first_filed)::DATE
        )
    ) // 7) AS bank_feed_silence_weeks
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
