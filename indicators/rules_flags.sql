-- Every rule a row breaks: one row per institution, week, indicator and kind of rule (the strictest tier).
-- Filled in by indicators/rules.py: {columns} = the indicator columns the rule book uses.
-- Reads the registered relations `rule_book` and `selected_weeks`.
with

indicator_rows as (
    select
        -- ids
        institution_id,
        week,
        province_code,
        -- indicators
        {columns}
    from marts.institution_week_indicators
    where week in (select week from selected_weeks)
),

long_values as (
    unpivot indicator_rows
    on {columns}
    into name indicator value value
),

applicable as (
    -- each value against its province's thresholds and the hard rules (no province): two equi-joins, where one
    -- join on the indicator alone tried every province's thresholds on every value (national: 100 rules each)
    select long_values.*, rule_book.* exclude (indicator, province_code)
    from long_values
    inner join rule_book
        on rule_book.indicator = long_values.indicator
        and rule_book.province_code = long_values.province_code
    union all
    select long_values.*, rule_book.* exclude (indicator, province_code)
    from long_values
    inner join rule_book
        on rule_book.indicator = long_values.indicator
        and rule_book.province_code is null
        and long_values.province_code is not null
),

broken as (
    select
        -- ids
        institution_id,
        week,
        indicator,
        -- rule
        kind,
        rule,
        op,
        threshold,
        tier,
        severity,
        points,
        -- value
        value
    from applicable
    where
        (op = '>' and value > threshold)
        or (op = '<' and value < threshold)
),

strictest as (
    select *
    from broken
    qualify row_number() over (
        partition by institution_id, week, indicator, kind order by severity desc
    ) = 1
)

select * from strictest
