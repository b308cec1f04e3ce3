-- Listed institutions per week and tier over the weeks up to the report's week.
with

scoped as (
    select
        week,
        tier
    from marts.warnings
    where week between $first_week and $week
        and ($province is null or province_code = $province)
),

counted as (
    select
        week,
        tier,
        count(*) as listed
    from scoped
    group by all
)

select * from counted order by week, tier
