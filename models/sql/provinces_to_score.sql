-- Every province-week of the stale weeks $weeks (`weeks_to_score.sql`), and whether it is to be rescored
-- (`stale`): a row never scored, indicators changed after the province-week's scores, a row of the same
-- institution in the $read_weeks weeks before changed after them (a week's features read those rows: changes,
-- trailing extremes, feed counts against earlier weeks), or scores of another model version in a week newer
-- than the current model's newest training week. Features rank institutions within their province-week, so one
-- changed row moves the ranks of the province-weeks that read it and of no other: a late row in one province
-- rescores that province's weeks only. models/scoring.py fills in {changed_at}, as in `weeks_to_score.sql`.
with

mart_rows as materialized (
    select
        -- keys
        mart.institution_id,
        mart.week,
        mart.week_start::date as week_start,
        mart.province_code,
        -- when its indicators changed and when it was scored
        {changed_at} as changed_at,
        scores._scored_at as scored_at,
        scores.model_version
    from marts.institution_week_indicators as mart
    left join marts.institution_week_scores as scores using (institution_id, week)
    where mart.week in (select unnest($weeks::varchar[]))
),

cells as (
    select
        week,
        province_code,
        count(*) as mart_rows,
        max(changed_at) as changed_at,
        count(scored_at) as scored_rows,
        min(scored_at) as scored_at,
        bool_or(model_version <> $model_version) as other_version
    from mart_rows
    group by week, province_code
),

read_changes as (
    -- rows changed since their scores (or never scored), carried to the later rows of their institution
    -- whose features read them
    select
        later.week,
        later.province_code,
        max(changed.changed_at) as changed_at
    from mart_rows as changed
    inner join mart_rows as later
        on later.institution_id = changed.institution_id
        and later.week_start > changed.week_start
        and later.week_start <= changed.week_start + 7 * $read_weeks
    where changed.scored_at is null or changed.changed_at > changed.scored_at
    group by later.week, later.province_code
)

select
    cells.week,
    cells.province_code,
    cells.scored_rows < cells.mart_rows
        or cells.changed_at is null
        or cells.changed_at > cells.scored_at
        or coalesce(read_changes.changed_at > cells.scored_at, false)
        or coalesce(cells.other_version and cells.week > $newest_training_week, false) as stale
from cells
left join read_changes using (week, province_code)
order by cells.week, cells.province_code
