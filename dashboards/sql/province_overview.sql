-- Per province, for one week: warnings by tier, and the prepaid liability against the supervised balance.
with

warnings as (
    select * from marts.warnings where week = ? and {scope}
),

tiers as (
    select
        province_code,
        count(*) filter (where tier = 'red') as red,
        count(*) filter (where tier = 'orange') as orange,
        count(*) filter (where tier = 'yellow') as yellow
    from warnings
    group by province_code
),

balances as (
    select
        province_code,
        sum(prepaid_liability_fen)::bigint as prepaid_liability_fen,
        sum(supervised_balance_fen)::bigint as supervised_balance_fen
    from marts.institution_week_indicators
    where week = ? and {scope}
    group by province_code
)

select
    province_code,
    coalesce(tiers.red, 0) as red,
    coalesce(tiers.orange, 0) as orange,
    coalesce(tiers.yellow, 0) as yellow,
    coalesce(balances.prepaid_liability_fen, 0) as prepaid_liability_fen,
    coalesce(balances.supervised_balance_fen, 0) as supervised_balance_fen
from balances
full join tiers using (province_code)
order by province_code
