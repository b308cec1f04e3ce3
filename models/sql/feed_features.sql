-- Feed counts a regulator reads beside the indicators, for the mart rows of the weeks starting $first … $last:
-- sales and class hours of the last 4 weeks against the institution's own weeks t−15 … t−4, complaints and refund
-- requests over 4 and 8 weeks (also per order of the last 26 weeks), mean stars and the share of 1–2-star
-- ratings over 8 weeks, and the staff count filed against the one in force 13 weeks before, the most filed in 26
-- weeks and the largest cut from one filing to the next in 26 weeks. Windows run over the institution's mart
-- weeks from $history (25 weeks before $first) on, over the weekly sums the indicators stored for them
-- (marts.institution_week_sums: the same events in the same weeks as the mart, each counted once); every count
-- reads the week's own and earlier weeks only, so events of later weeks change nothing.
with grid as (
    select
        institution_id,
        week,
        week_start::date as week_start
    from marts.institution_week_indicators
    where week_start::date between $history and $last
        and {institutions}  -- `true`, or the institutions asked for
),

staff_filings as (
    -- the staff count filed each day (the smallest when one day has several filings), against the previous day's
    select
        institution_id,
        record_date,
        min(staff_count) as staff_count,
        min(staff_count) / nullif(lag(min(staff_count)) over (partition by institution_id order by record_date), 0)
            as staff_step
    from staging.institutions
    where staff_count is not null and record_date < $until
    group by institution_id, record_date
),

featured as (
    select
        institution_id,
        week,
        week_start,
        week_start + 6 as week_end
    from grid
    where week_start >= $first
),

staff_now as (
    select featured.institution_id, featured.week, staff_filings.staff_count as staff_now
    from featured
    asof left join staff_filings
        on staff_filings.institution_id = featured.institution_id and featured.week_end >= staff_filings.record_date
),

staff_13w as (
    select featured.institution_id, featured.week, staff_filings.staff_count as staff_13w
    from featured
    asof left join staff_filings
        on staff_filings.institution_id = featured.institution_id and featured.week_end - 91 >= staff_filings.record_date
),

staff_26w as (
    select
        featured.institution_id,
        featured.week,
        max(staff_filings.staff_count) as staff_max_26w,
        min(staff_filings.staff_step) as staff_cut_26w
    from featured
    inner join staff_filings
        on staff_filings.institution_id = featured.institution_id
        and staff_filings.record_date between featured.week_end - 181 and featured.week_end
    group by all
),

weeks as materialized (
    -- materialised: inlined, the sums were joined to the 26 window rows of each featured week (national: 11M
    -- probes instead of the grid's 4M)
    select
        -- keys
        grid.institution_id,
        grid.week,
        grid.week_start,
        -- counts and sums of the week (0 for a mart week without stored sums)
        coalesce(sums.orders, 0) as orders,
        coalesce(sums.paid_fen, 0) as paid_fen,
        coalesce(sums.consumed_hours, 0) as class_hours,
        coalesce(sums.complaints, 0) as complaints,
        coalesce(sums.refund_requests, 0) as refunds,
        coalesce(sums.ratings, 0) as ratings,
        coalesce(sums.stars, 0) as stars,
        coalesce(sums.low_ratings, 0) as low_ratings
    from grid
    left join marts.institution_week_sums as sums
        on sums.institution_id = grid.institution_id and sums.week_start = grid.week_start
        and sums.week_start between $history and $last
),

windows as (
    -- each featured week against the institution's weeks t−25 … t: a join, not window functions, which framed
    -- every history row too (at national ~9 s a chunk, for the tenth of the rows that are featured)
    select
        featured.institution_id,
        featured.week,
        featured.week_start,
        -- last 4 weeks against the own weeks t−15 … t−4
        sum(weeks.paid_fen) filter (where weeks.week_start >= featured.week_start - 21) as paid_fen_4w,
        sum(weeks.paid_fen) filter (where weeks.week_start between featured.week_start - 105
                                    and featured.week_start - 28) as paid_fen_base,
        sum(weeks.class_hours) filter (where weeks.week_start >= featured.week_start - 21) as class_hours_4w,
        sum(weeks.class_hours) filter (where weeks.week_start between featured.week_start - 105
                                       and featured.week_start - 28) as class_hours_base,
        -- complaints, refunds and ratings
        sum(weeks.orders) as orders_26w,
        sum(weeks.complaints) filter (where weeks.week_start >= featured.week_start - 21) as complaints_4w,
        sum(weeks.complaints) filter (where weeks.week_start >= featured.week_start - 49) as complaints_8w,
        sum(weeks.refunds) filter (where weeks.week_start >= featured.week_start - 21) as refunds_4w,
        sum(weeks.refunds) filter (where weeks.week_start >= featured.week_start - 49) as refunds_8w,
        sum(weeks.ratings) filter (where weeks.week_start >= featured.week_start - 49) as ratings_8w,
        sum(weeks.stars) filter (where weeks.week_start >= featured.week_start - 49) as stars_8w,
        sum(weeks.low_ratings) filter (where weeks.week_start >= featured.week_start - 49) as low_ratings_8w
    from featured
    inner join weeks
        on weeks.institution_id = featured.institution_id
        and weeks.week_start between featured.week_start - 175 and featured.week_start
    group by featured.institution_id, featured.week, featured.week_start
)

select
    -- keys
    institution_id,
    week,
    -- sales and attendance against the institution's own earlier weeks (log ratio, 3 base weeks per 4-week block)
    ln(1 + paid_fen_4w) - ln(1 + coalesce(paid_fen_base, 0) / 3) as "sales_spike_ratio__sales_4w_vs_own",
    ln(1 + class_hours_4w) - ln(1 + coalesce(class_hours_base, 0) / 3) as "consumption_drop__hours_4w_vs_own",
    -- complaints
    complaints_4w::double as "complaint_surge__complaints_4w",
    complaints_8w::double as "complaint_surge__complaints_8w",
    complaints_8w / greatest(orders_26w, 1) as "complaint_surge__complaints_8w_per_order",
    -- refund requests
    refunds_4w::double as "refund_request_surge__refunds_4w",
    refunds_8w::double as "refund_request_surge__refunds_8w",
    refunds_8w / greatest(orders_26w, 1) as "refund_request_surge__refunds_8w_per_order",
    -- ratings
    stars_8w / nullif(ratings_8w, 0) as "rating_drop__mean_stars_8w",
    low_ratings_8w / nullif(ratings_8w, 0) as "rating_drop__low_share_8w",
    -- staff of the filings (a cut before the doors close)
    staff_now / nullif(staff_13w, 0) as "staff_unverified_share__staff_vs_13w",
    staff_now / nullif(staff_max_26w, 0) as "staff_unverified_share__staff_vs_max_26w",
    staff_cut_26w as "staff_unverified_share__largest_staff_cut_26w"
from windows
left join staff_now using (institution_id, week)
left join staff_13w using (institution_id, week)
left join staff_26w using (institution_id, week)
order by week, institution_id
