-- Label of every institution-week of the indicators mart: 1 when the institution files an abnormal closure
-- 2 to 8 weeks after that week (i.e. within the 8 weeks after the week's end, not counting the last week
-- before the closure, when warning is too late). Weeks from the closure week on are dropped, and so is the
-- last week before an abnormal closure. `observed` is false while the week's 8-week horizon is not over at
-- $as_of: a negative may still turn positive, so the whole week is left out of training and evaluation
-- (keeping only its known positives would inflate the base rate and precision). Only the keys, the label and
-- `observed` come out: at national this is one row per institution-week (9M), and every column costs.
with closing_filings as (
    select
        institution_id,
        record_date,
        closure_reason
    from staging.institutions
    where event in ('closed', 'revoked')
),

first_closures as (
    select
        institution_id,
        min(record_date) as closure_date,
        arg_min(closure_reason, record_date) as closure_reason
    from closing_filings
    group by institution_id
),

mart_weeks as (
    select
        institution_id,
        week,
        week_start::date as week_start,
        week_end::date as week_end
    from marts.institution_week_indicators
),

weeks_to_closure as (
    select
        mart_weeks.*,
        first_closures.closure_date,
        first_closures.closure_reason,
        (first_closures.closure_reason = 'abnormal') as is_abnormal,
        (date_trunc('week', first_closures.closure_date)::date - mart_weeks.week_start) // 7 as weeks_ahead
    from mart_weeks
    left join first_closures using (institution_id)
),

kept as (
    select *
    from weeks_to_closure
    where weeks_ahead is null
       or weeks_ahead >= 2
       or (weeks_ahead = 1 and not is_abnormal)
),

labelled as (
    select
        institution_id,
        week,
        coalesce(is_abnormal and weeks_ahead <= 8, false)::int as label,
        week_end + interval 56 day <= $as_of::date as observed
    from kept
)

select * from labelled
order by week, institution_id
