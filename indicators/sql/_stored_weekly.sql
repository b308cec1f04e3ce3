-- Step 4b, a refresh from stored sums only: the weeks of the windows' grid before the first recomputed week
-- (ind_window_start() to ind_rows_start()) are read from marts.institution_week_sums, written when they were
-- last recomputed, and every earlier stored week is summed into the carry row; the weeks from ind_rows_start()
-- on were just summed from the feeds' rows (`_weekly` built no carry row for them: the stored weeks hold it).
-- A new week thus reads one week of the big feeds, not its whole look-back.
INSERT INTO ind_weekly BY NAME
SELECT
    -- grid keys and filing values of this computation
    s.k,
    s.institution_no,
    s.institution_id,
    s.week_start,
    s.first_filed,
    s.reserve_required_fen,
    -- the stored sums (0 for a grid row never stored: an institution filed since, with no rows then)
    coalesce(COLUMNS(w.* EXCLUDE (institution_id, week_start, last_movement_week, last_order_or_class_week)), 0),
    w.last_movement_week,
    w.last_order_or_class_week
FROM ind_state AS s
LEFT JOIN marts.institution_week_sums AS w USING (institution_id, week_start)
WHERE s.week_start < ind_rows_start();

INSERT INTO ind_weekly BY NAME
SELECT
    ind_grid_key(i.institution_no, c.week_no - 1, c.n_weeks) AS k,
    i.institution_no,
    i.institution_id,
    c.week_start - 7 AS week_start,
    sum(COLUMNS(w.* EXCLUDE (institution_id, week_start, last_movement_week, last_order_or_class_week))),
    max(w.last_movement_week) AS last_movement_week,
    max(w.last_order_or_class_week) AS last_order_or_class_week
FROM ind_institutions AS i
CROSS JOIN ind_calendar AS c
INNER JOIN marts.institution_week_sums AS w ON w.institution_id = i.institution_id AND w.week_start < c.week_start
WHERE c.week_start = ind_window_start() AND c.week_no > 1
GROUP BY ALL;
