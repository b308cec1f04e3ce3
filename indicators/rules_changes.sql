-- Week-on-week comparison of the warning lists: `change` per listed row, and the rows that dropped out, for the
-- weeks of the registered relation `week_pairs(week, previous_week)`: those rebuilt and the week after each. Other
-- weeks keep theirs, so a weekly run rewrites a few weeks of the lists, not every week's.
create or replace temp table warning_changes as
with

tier_order as (
    select * from (values ('yellow', 1), ('orange', 2), ('red', 3)) as t(tier, severity)
),

current_rows as (
    select
        warnings.*,
        week_pairs.previous_week
    from marts.warnings as warnings
    inner join week_pairs using (week)
),

compared as (
    select
        current_rows.* exclude (change, previous_tier, previous_week),
        case
            when previous.tier is null then 'new'
            when now_order.severity > before_order.severity then 'tier_up'
            when now_order.severity < before_order.severity then 'tier_down'
            else 'unchanged'
        end as change,
        previous.tier as previous_tier
    from current_rows
    left join marts.warnings as previous
        on previous.institution_id = current_rows.institution_id
        and previous.week = current_rows.previous_week
    left join tier_order as now_order on now_order.tier = current_rows.tier
    left join tier_order as before_order on before_order.tier = previous.tier
)

select * from compared;

delete from marts.warnings where week in (select week from week_pairs);

insert into marts.warnings by name
select * from warning_changes
order by week, province_code, rank;

create or replace temp table warning_dropped as
with

dropped as (
    select
        -- ids
        week_pairs.week,
        week_pairs.previous_week,
        previous.province_code,
        previous.county_code,
        previous.institution_id,
        previous.name,
        -- last listing
        previous.tier as previous_tier,
        previous.score as previous_score,
        previous.reasons_zh as previous_reasons_zh
    from week_pairs
    inner join marts.warnings as previous
        on previous.week = week_pairs.previous_week
    anti join marts.warnings as current_rows
        on current_rows.week = week_pairs.week
        and current_rows.institution_id = previous.institution_id
),

with_activity as (
    select
        dropped.*,
        indicators.institution_id is not null as still_active
    from dropped
    left join marts.institution_week_indicators as indicators
        on indicators.week = dropped.week
        and indicators.institution_id = dropped.institution_id
)

select * from with_activity;

create table if not exists marts.warning_drops as select * from warning_dropped where false;

delete from marts.warning_drops where week in (select week from week_pairs);

insert into marts.warning_drops by name
select * from warning_dropped
order by week, province_code, institution_id;

drop table warning_changes;
drop table warning_dropped;
