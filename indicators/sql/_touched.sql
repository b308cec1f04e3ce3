-- Per institution, the times that the changes of staging.{feed} since $since can move (see compute._touched_sql):
-- new keys count with all their times, corrected rows with the times that changed (all of them when another
-- column changed, or when only the status did); a row moved to another institution touches both.
WITH old_versions AS (
    SELECT * FROM staging.{feed}_history WHERE _superseded_at > $since
),
inserted AS (
    SELECT n.institution_id, {every_new} AS t
    FROM staging.{feed} AS n
    ANTI JOIN old_versions AS o USING ({keys})
    WHERE n._loaded_at > $since
),
corrected AS (
    SELECT
        o.institution_id AS old_institution_id,
        n.institution_id,
        CASE
            WHEN {changed} THEN {every_both}
            WHEN {any_time} THEN {changed_times}
            ELSE {every_both}
        END AS t
    FROM old_versions AS o
    INNER JOIN staging.{feed} AS n USING ({keys})
)
SELECT institution_id, t FROM inserted
UNION ALL
SELECT institution_id, t FROM corrected
UNION ALL
SELECT old_institution_id, t FROM corrected WHERE old_institution_id IS DISTINCT FROM institution_id
