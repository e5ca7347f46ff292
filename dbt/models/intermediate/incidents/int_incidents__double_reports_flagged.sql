-- fct_incidents with is_double_report: true for the later copy of a cross-border double report
-- (int_incidents__cross_border_pairs). The KPI marts count `where not is_double_report`, so the event
-- counts once; an incident that doubles several originals is still one row here.
{{ config(materialized='view') }}

with

incidents as (

    select * from {{ ref('fct_incidents') }}

),

double_reports as (

    select distinct double_report_record_id from {{ ref('int_incidents__cross_border_pairs') }}

),

final as (

    select
        incidents.*,
        double_reports.double_report_record_id is not null as is_double_report
    from incidents
    left join double_reports
        on incidents.record_id = double_reports.double_report_record_id

)

select * from final
