-- One institution's orders, refunds and complaints per ISO week (counts and fen).
with

orders as (
    select
        strftime(paid_at, '%G-W%V') as week,
        count(*) as orders,
        sum(paid_fen)::bigint as paid_fen
    from staging.orders
    where institution_id = ? and status = 'paid'
    group by week
),

refunds as (
    select
        strftime(requested_at, '%G-W%V') as week,
        count(*) as refund_requests,
        sum(requested_fen)::bigint as requested_fen
    from staging.refunds
    where institution_id = ?
    group by week
),

complaints as (
    select
        strftime(received_at, '%G-W%V') as week,
        count(*) as complaints
    from staging.complaints
    where institution_id = ?
    group by week
)

select
    week,
    coalesce(orders.orders, 0) as orders,
    coalesce(refunds.refund_requests, 0) as refund_requests,
    coalesce(complaints.complaints, 0) as complaints,
    coalesce(orders.paid_fen, 0) as paid_fen,
    coalesce(refunds.requested_fen, 0) as requested_fen
from orders
full join refunds using (week)
full join complaints using (week)
order by week
