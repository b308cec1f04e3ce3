-- Institution-weeks that may be listed: a hard rule broken, a model score at or above the lowest cut-off, or
-- without a model score points at or above $min_points (where the rule score reaches the lowest cut-off). Most
-- rows break some yellow threshold; reading them all into Python cost more than building the list.
-- Filled in by indicators/rules.py: {model_scores} = a relation (institution_id, week, score, contributions)
-- of the newest model's scores of the selected weeks, empty when the model has not scored yet.
-- Reads the tables `rule_flags` and `selected_weeks` and the parameters $min_model_score and $min_points.
with

points as (
    select
        institution_id,
        week,
        sum(points) as points,
        max(severity) filter (where kind = 'hard') as hard_severity
    from rule_flags
    group by all
),

model_scores as (
    select
        institution_id,
        week,
        score as model_score,
        contributions
    from {model_scores}
),

candidates as (
    select institution_id, week from points
    union
    select institution_id, week from model_scores where model_score >= $min_model_score
),

joined as (
    select
        -- ids
        indicators.week,
        indicators.province_code,
        indicators.county_code,
        indicators.institution_id,
        indicators.name,
        -- scores
        coalesce(points.points, 0) as points,
        points.hard_severity,
        model_scores.model_score,
        model_scores.contributions::varchar as contributions
    from candidates
    inner join marts.institution_week_indicators as indicators
        using (institution_id, week)
    left join points using (institution_id, week)
    left join model_scores using (institution_id, week)
)

select *
from joined
where hard_severity is not null
    or model_score >= $min_model_score
    or (model_score is null and points >= $min_points)
