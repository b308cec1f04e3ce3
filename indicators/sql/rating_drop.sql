-- rating_drop: mean stars of the 12 weeks before the last 4 minus mean stars of the last 4 weeks.
WITH periods AS (
    SELECT
        k,
        sum(stars) OVER (w ROWS 3 PRECEDING) AS recent_stars,
        sum(ratings) OVER (w ROWS 3 PRECEDING) AS recent_ratings,
        sum(stars) OVER (w ROWS BETWEEN 15 PRECEDING AND 4 PRECEDING) AS earlier_stars,
        sum(ratings) OVER (w ROWS BETWEEN 15 PRECEDING AND 4 PRECEDING) AS earlier_ratings
    FROM ind_weekly
    WINDOW w AS (PARTITION BY institution_no ORDER BY k)
)
SELECT
    k,
    earlier_stars / nullif(earlier_ratings, 0) - recent_stars / nullif(recent_ratings, 0) AS rating_drop
FROM periods
