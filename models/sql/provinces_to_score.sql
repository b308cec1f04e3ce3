-- Every province-week of the stale weeks $weeks (`weeks_to_score.sql`), and whether it is to be rescored
-- (`stale`): a row never scored, indicators
-- changed after the province-week's scores, or scores of another model version in a week newer than the current
-- model's newest training week. Features rank institutions within their province-week, so one changed row moves
-- the ranks of its province-week and of no other: a late row in one province rescores that province's week only.
-- models/scoring.py fills in {changed_at}, as in `weeks_to_score.sql`.
with

cells as (
    select
        -- keys
        mart.week,
        mart.province_code,
        -- rows and when they changed
        count(*) as mart_rows,
        max({changed_at}) as changed_at,
        -- their scores
        count(scores._scored_at) as scored_rows,
        min(scores._scored_at) as scored_at,
        bool_or(scores.model_version <> $model_version) as other_version
    from marts.institution_week_indicators as mart
    left join marts.institution_week_scores as scores using (institution_id, week)
    where mart.week in (select unnest($weeks::varchar[]))
    group by mart.week, mart.province_code
)

select
    week,
    province_code,
    scored_rows < mart_rows
        or changed_at is null
        or changed_at > scored_at
        or coalesce(other_version and week > $newest_training_week, false) as stale
from cells
order by week, province_code
