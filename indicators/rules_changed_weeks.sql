-- Weeks of the indicators mart to rebuild: never built, built under another rule book ($rule_book), or
-- indicators changed / scores written after the last build.
-- Filled in by indicators/rules.py: {changed_at} = when a mart row last changed (`indicators.compute.changed_at`),
-- {scored} = a relation (week, changed_at) of the scores' newest write.
with

indicator_weeks as (
    select week, max({changed_at}) as computed_at
    from marts.institution_week_indicators
    group by week
),

score_weeks as (
    {scored}
),

builds as (
    select week, built_at, rule_book from ops.week_builds
)

select indicator_weeks.week
from indicator_weeks
left join score_weeks using (week)
left join builds using (week)
where builds.built_at is null
    or indicator_weeks.computed_at > builds.built_at
    or score_weeks.changed_at > builds.built_at
    or builds.rule_book is distinct from $rule_book
order by indicator_weeks.week
