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

broken as (
    select
        -- ids
        long_values.institution_id,
        long_values.week,
        long_values.indicator,
        -- rule
        rule_book.kind,
        rule_book.rule,
        rule_book.op,
        rule_book.threshold,
        rule_book.tier,
        rule_book.severity,
        rule_book.points,
        -- value
        long_values.value
    from long_values
    inner join rule_book
        on rule_book.indicator = long_values.indicator
        and coalesce(rule_book.province_code, long_values.province_code) = long_values.province_code
    where
        (rule_book.op = '>' and long_values.value > rule_book.threshold)
        or (rule_book.op = '<' and long_values.value < rule_book.threshold)
),

strictest as (
    select *
    from broken
    qualify row_number() over (
        partition by institution_id, week, indicator, kind order by severity desc
    ) = 1
)

select * from strictest
