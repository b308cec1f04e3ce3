-- Prepaid liability against the money held in supervision accounts, per week (whole fen).
with

scoped as (
    select
        week,
        prepaid_liability_fen,
        supervised_balance_fen
    from marts.institution_week_indicators
    where week between $first_week and $week
        and ($province is null or province_code = $province)
),

summed as (
    select
        week,
        count(*) as active_institutions,
        coalesce(sum(prepaid_liability_fen), 0)::bigint as prepaid_liability_fen,
        coalesce(sum(supervised_balance_fen), 0)::bigint as supervised_balance_fen
    from scoped
    group by all
)

select * from summed order by week
