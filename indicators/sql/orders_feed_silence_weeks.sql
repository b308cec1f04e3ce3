-- orders_feed_silence_weeks: whole weeks since the last week with an order paid or a class consumed (0 = this week); with none ever, since the
-- registration week.
SELECT
    k,
    greatest(0, (
        week_start - coalesce(
            max(last_order_or_class_week) OVER (w ROWS UNBOUNDED PRECEDING),
            date_trunc('week', first_filed)::DATE
        )
    ) // 7) AS orders_feed_silence_weeks
FROM ind_weekly
WINDOW w AS (PARTITION BY institution_no ORDER BY k)
