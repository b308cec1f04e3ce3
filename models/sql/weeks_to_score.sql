-- Weeks of the indicators mart to (re)score: never scored, indicators changed after the week's scores, or
-- scored by another model version and newer than the current model's newest training week (weeks the model
-- trained on keep the scores the regulator saw); and the $read_weeks weeks after each of those, whose features
-- read its rows (`provinces_to_score.sql` then keeps the province-weeks really touched). models/scoring.py
-- fills in {changed_at}: when a row's indicators last changed (`indicators.compute.changed_at`; NULL for an
-- old mart: every week is then rescored).
with

indicator_weeks as (
    select
        week,
        week_start::date as week_start,
        max({changed_at}) as computed_at
    from marts.institution_week_indicators
    group by week, week_start
),

score_weeks as (
    select
        week,
        min(_scored_at) as scored_at,
        bool_or(model_version <> $model_version) as other_version
    from marts.institution_week_scores
    group by week
),

stale_weeks as (
    select indicator_weeks.week, indicator_weeks.week_start
    from indicator_weeks
    left join score_weeks using (week)
    where score_weeks.scored_at is null
        or indicator_weeks.computed_at is null
        or indicator_weeks.computed_at > score_weeks.scored_at
        or (score_weeks.other_version and indicator_weeks.week > $newest_training_week)
),

reading_weeks as (
    select later.week
    from indicator_weeks as later
    inner join stale_weeks
        on later.week_start > stale_weeks.week_start
        and later.week_start <= stale_weeks.week_start + 7 * $read_weeks
)

select week from stale_weeks
union
select week from reading_weeks
order by week
