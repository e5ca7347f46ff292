-- Incident volume per month, jurisdiction and harmonised category, with the change on the same month a
-- year earlier ("110 alarms down 26.12%"). Months are local (Asia/Shanghai) calendar months.
with

incidents as (

    select
        jurisdiction_code,
        category,
        cast(date_trunc('month', {{ local_time('reported_at') }}) as date) as incident_month
    from {{ ref('fct_incidents') }}

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

with_prior_year as (

    select
        monthly.incident_month,
        monthly.jurisdiction_code,
        monthly.category,
        monthly.incidents,
        prior.incidents as incidents_prior_year
    from monthly
    left join monthly as prior
        on prior.incident_month = monthly.incident_month - interval 1 year
        and prior.jurisdiction_code = monthly.jurisdiction_code
        and prior.category is not distinct from monthly.category

)

select
    incident_month,
    jurisdiction_code,
    category,
    incidents,
    incidents_prior_year,
    -- percent change; null when the month had no incidents a year earlier
    round(100.0 * (incidents - incidents_prior_year) / nullif(incidents_prior_year, 0), 2)
        as yoy_change_pct
from with_prior_year
