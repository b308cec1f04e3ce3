-- governance_changes_90d: renamed / legal_rep_changed / relocated records dated in the 90 days to week end.
WITH changes AS (
    SELECT institution_id, known_date
    FROM ind_filings
    WHERE event IN ('renamed', 'legal_rep_changed', 'relocated')
),
last_weeks AS (
    SELECT g.institution_id, c.week_start, count(*) AS governance_changes_90d
    FROM changes AS g
    INNER JOIN ind_calendar AS c ON g.known_date BETWEEN c.week_end - 89 AND c.week_end
    GROUP BY ALL
)
SELECT s.k, coalesce(t.governance_changes_90d, 0) AS governance_changes_90d
FROM ind_state AS s
LEFT JOIN last_weeks AS t USING (institution_id, week_start)
