-- Each institution's latest filing record on or before the as-of date (the change log's current state).
with

records as (
    select
        institution_id,
        name,
        province_code,
        county_code,
        event,
        closure_reason,
        licence_expiry,
        record_date,
        row_number() over (partition by institution_id order by record_date desc, _loaded_at desc) as recency
    from staging.institutions
    where record_date <= ?
)

select
    institution_id,
    name,
    province_code,
    county_code,
    event,
    closure_reason,
    licence_expiry,
    record_date
from records
where recency = 1
order by institution_id
