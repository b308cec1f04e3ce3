-- Weeks of the indicators mart to (re)score: never scored, indicators written after the week's scores, or
-- scored by another model version and newer than the current model's newest training week (weeks the model
-- trained on keep the scores the regulator saw). models/scoring.py fills in {computed_at}: the indicators'
-- write time, or NULL for a mart without `_computed_at` (every week is then rescored).
with

indicator_weeks as (
    select
        week,
        {computed_at} as computed_at
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
