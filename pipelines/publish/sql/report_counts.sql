-- Listed institutions of the week by area (province for the national report, county for a province) and tier.
with

scoped as (
    select
        case when $province is null then province_code else county_code end as area,
        tier
    from marts.warnings
    where week = $week
        and ($province is null or province_code = $province)
),

counted as (
    select
        area,
        tier,
        count(*) as listed
    from scoped
    group by all
)

select * from counted order by area, tier
