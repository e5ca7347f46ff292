-- fct_incidents as the KPI marts count it: every incident once, without the later copy of a cross-border
-- double report (int_incidents__cross_border_pairs). An incident that doubles several originals is left
-- out once.
{{ config(materialized='view') }}

with

incidents as (

    select * from {{ ref('fct_incidents') }}

),

double_reports as (

    select distinct double_report_record_id from {{ ref('int_incidents__cross_border_pairs') }}

),

final as (

    select incidents.*
    from incidents
    left join double_reports
        on incidents.record_id = double_reports.double_report_record_id
    where double_reports.double_report_record_id is null

)

select * from final
