-- The feeds' events per institution and week (by event time, in the connection's time zone like the mart's weeks)
-- from $history to before $until: what the windows of `feed_features.sql` sum. Featuring a national history a
-- chunk of weeks at a time materialises this once for every week (`models.features.feed_weeks`) instead of
-- reading 25 weeks of every feed again per chunk. Weeks truncate the local time (`timezone(...)`), the same Monday
-- as a time-zone-aware date_trunc at two thirds of its cost (national: 23M consumptions, 4.6 → 3.0 s).
with weekly_orders as (
    select
        institution_id,
        date_trunc('week', timezone(current_setting('TimeZone'), paid_at))::date as week_start,
        count(*) as orders,
        sum(paid_fen) as paid_fen
    from staging.orders
    where status <> 'cancelled' and paid_at >= $history and paid_at < $until
    group by all
),

weekly_hours as (
    select
        institution_id,
        date_trunc('week', timezone(current_setting('TimeZone'), consumed_at))::date as week_start,
        sum(class_hours) as class_hours
    from staging.consumptions
    where consumed_at >= $history and consumed_at < $until
    group by all
),

weekly_complaints as (
    select
        institution_id,
        date_trunc('week', timezone(current_setting('TimeZone'), received_at))::date as week_start,
        count(*) as complaints
    from staging.complaints
    where received_at >= $history and received_at < $until
    group by all
),

weekly_refunds as (
    select
        institution_id,
        date_trunc('week', timezone(current_setting('TimeZone'), requested_at))::date as week_start,
        count(*) as refunds
    from staging.refunds
    where requested_at >= $history and requested_at < $until
    group by all
),

weekly_ratings as (
    select
        institution_id,
        date_trunc('week', timezone(current_setting('TimeZone'), rated_at))::date as week_start,
        count(*) as ratings,
        sum(stars) as stars,
        count(*) filter (where stars <= 2) as low_ratings
    from staging.evaluations
    where rated_at >= $history and rated_at < $until
    group by all
)

select
    -- keys
    institution_id,
    week_start,
    -- counts and sums (null where a feed had no event that week: `feed_features.sql` reads them as 0)
    orders,
    paid_fen,
    class_hours,
    complaints,
    refunds,
    ratings,
    stars,
    low_ratings
from weekly_orders
full join weekly_hours using (institution_id, week_start)
full join weekly_complaints using (institution_id, week_start)
full join weekly_refunds using (institution_id, week_start)
full join weekly_ratings using (institution_id, week_start)
