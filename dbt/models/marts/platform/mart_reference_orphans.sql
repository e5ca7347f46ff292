-- Facts that name a reference the warehouse does not hold (a USCC absent from the registry): one row per
-- fact and reference with the count, so a finding that repeats every night is read once, not as a test
-- warning per row (the orphan rule documented on the referencing columns).
with

alarm_orphans as (
    select alarms.uscc
    from {{ ref('fct_fire_alarms') }} as alarms
    anti join {{ ref('dim_enterprise') }} as enterprises on alarms.uscc = enterprises.uscc
),

inspection_orphans as (
    select inspections.uscc
    from {{ ref('fct_fire_inspections') }} as inspections
    anti join {{ ref('dim_enterprise') }} as enterprises on inspections.uscc = enterprises.uscc
),

counted as (
    select
        'fct_fire_alarms' as fact_table,
        'dim_enterprise' as reference_table,
        'uscc' as key_column,
        count(*) as orphan_rows,
        count(distinct uscc) as orphan_keys
    from alarm_orphans
    union all
    select
        'fct_fire_inspections' as fact_table,
        'dim_enterprise' as reference_table,
        'uscc' as key_column,
        count(*) as orphan_rows,
        count(distinct uscc) as orphan_keys
    from inspection_orphans
)

select * from counted
