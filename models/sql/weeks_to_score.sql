-- Weeks of the indicators mart to (re)score: never scored, indicators changed after the week's scores, or
-- scored by another model version and newer than the current model's newest training week (weeks the model
-- trained on keep the scores the regulator saw). models/scoring.py fills in {changed_at}: when a row's
-- indicators last changed (`indicators.compute.changed_at`; NULL for an old mart: every week is then rescored).
with

indicator_weeks as (
    select
        week,
        max({changed_at}) as computed_at
    from marts.institution_week_indicators
    group by week
),

score_weeks as (
    select
        week,
        min(_scored_at) as scored_at,
        bool_or(model_version <> $model_version) as other_version
    from marts.institution_week_scores
    group by week
)

select indicator_weeks.week
from indicator_weeks
left join score_weeks using (week)
where score_weeks.scored_at is null
    or indicator_weeks.computed_at is null
    or indicator_weeks.computed_at > score_weeks.scored_at
    or (score_weeks.other_version and indicator_weeks.week > $newest_training_week)
order by indicator_weeks.week
