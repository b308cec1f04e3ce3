-- Each institution's latest filing record on or before the as-of date (the change log's current state).
select
    institution_id,
    name,
    province_code,
    county_code,
    event,
    closure_reason,
    licence_expiry,
    record_date
from staging.institutions
where record_date <= ?
qualify row_number() over (partition by institution_id order by record_date desc, _loaded_at desc) = 1
order by institution_id
