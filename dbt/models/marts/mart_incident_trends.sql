-- Incident volume per month, jurisdiction and harmonised category, with the change on the same month a
-- year earlier ("110 alarms down 26.12%"). Months are local (Asia/Shanghai) calendar months. A
-- cross-border double report counts once (int_incidents__counted_once).
with

incidents as (

    select
        jurisdiction_code,
        category,
        {{ local_month('reported_at') }} as incident_month
    from {{ ref('int_incidents__counted_once') }}

),

double_reports as (

    select
        pairs.double_report_jurisdiction_code as jurisdiction_code,
        pairs.category,
        {{ local_month('incidents.reported_at') }} as incident_month,
        count(distinct pairs.double_report_record_id) as double_reports_excluded
    from {{ ref('int_incidents__cross_border_pairs') }} as pairs
    inner join {{ ref('fct_incidents') }} as incidents
        on pairs.double_report_record_id = incidents.record_id
    group by 1, 2, 3

),

monthly as (

    select
        incident_month,
        jurisdiction_code,
        category,
        count(*) as incidents
    from incidents
    group by 1, 2, 3

),

staleness as (

    {{ source_staleness(['incident']) }}

),

with_prior_year as (

    select
        monthly.incident_month,
        monthly.jurisdiction_code,
        monthly.category,
        monthly.incidents,
        prior.incidents as incidents_prior_year
    from monthly
    left join monthly as prior
        on prior.incident_month = cast({{ dbt.dateadd('year', -1, 'monthly.incident_month') }} as date)
        and prior.jurisdiction_code = monthly.jurisdiction_code
        and coalesce(prior.category, '') = coalesce(monthly.category, '')

),

final as (

    select
        with_prior_year.incident_month,
        with_prior_year.jurisdiction_code,
        with_prior_year.category,
        cast(with_prior_year.incidents as bigint) as incidents,
        cast(with_prior_year.incidents_prior_year as bigint) as incidents_prior_year,
        -- percent change; null when the month had no incidents a year earlier
        cast(round(
            100.0 * (with_prior_year.incidents - with_prior_year.incidents_prior_year)
            / nullif(with_prior_year.incidents_prior_year, 0), 2
        ) as double) as yoy_change_pct,
        cast(coalesce(double_reports.double_reports_excluded, 0) as bigint) as double_reports_excluded,
        coalesce(staleness.is_source_stale, false) as is_source_stale
    from with_prior_year
    left join double_reports
        on with_prior_year.incident_month = double_reports.incident_month
        and with_prior_year.jurisdiction_code = double_reports.jurisdiction_code
        and coalesce(with_prior_year.category, '') = coalesce(double_reports.category, '')
    left join staleness
        on with_prior_year.jurisdiction_code = staleness.jurisdiction_code

)

select * from final
