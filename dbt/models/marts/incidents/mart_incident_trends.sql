-- Incident volume per month, jurisdiction and harmonised category, with the change on the same month a
-- year earlier ("110 alarms down 26.12%"). Months are local (Asia/Shanghai) calendar months. A
-- cross-border double report counts once: its later copy is left out of `incidents` and counted in
-- `double_reports_excluded`.
-- Spark: partitioned by month, the same months rewritten (macros/cross_db/month_marts_on_spark.sql).
-- Incremental by month (macros/period_rebuild.sql): delete+insert of whole months, not a merge
-- on the row key, because a month's groups can vanish (a withdrawn call was its category's only one).
-- A touched month is recomputed with the month a year later, whose prior-year column it feeds.
-- depends_on: {{ ref('stg_raw__feeds') }}
-- depends_on: {{ ref('fct_incidents') }}
-- depends_on: {{ source('raw', 'touched_keys') }}
-- depends_on: {{ source('raw', 'touched_months') }}
{{
    config(
        materialized=month_mart_materialization(),
        incremental_strategy=month_mart_strategy(),
        partition_by=month_mart_partitions('incident_month'),
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_months('incident_month', rebuilt_months(incident_trend_months(), 'incident_month', ['incident'])) }}",
        post_hook=[
            "{{ refresh_source_staleness(['incident']) }}",
            "{{ drop_emptied_months('incident_month') }}",
        ],
    )
}}
{%- set months = rebuilt_months(incident_trend_months(), 'incident_month', ['incident']) %}

with

incidents as (

    select
        jurisdiction_code,
        category,
        is_double_report,
        {{ local_month('reported_at') }} as incident_month
    from {{ ref('int_incidents__double_reports_flagged') }}
    {% if is_incremental() %}
        -- the months recomputed and the months a year before them
        {%- set with_prior_year -%}
            select month from ({{ months }}) as rebuilt
            union
            select cast({{ dbt.dateadd('year', -1, 'month') }} as date) from ({{ months }}) as rebuilt
        {%- endset %}
        where {{ in_months('reported_on', with_prior_year) }}
    {% endif %}

),

monthly as (

    select
        incident_month,
        jurisdiction_code,
        category,
        sum(case when is_double_report then 0 else 1 end) as incidents,
        sum(case when is_double_report then 1 else 0 end) as double_reports_excluded
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
        monthly.double_reports_excluded,
        prior_year.incidents as incidents_prior_year
    from monthly
    left join monthly as prior_year
        on
            prior_year.incident_month = cast({{ dbt.dateadd('year', -1, 'monthly.incident_month') }} as date)
            and monthly.jurisdiction_code = prior_year.jurisdiction_code
            and prior_year.category is not distinct from monthly.category

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
        cast(with_prior_year.double_reports_excluded as bigint) as double_reports_excluded,
        coalesce(staleness.is_source_stale, false) as is_source_stale
    from with_prior_year
    left join staleness
        on with_prior_year.jurisdiction_code = staleness.jurisdiction_code
    {% if is_incremental() %}
        where with_prior_year.incident_month in ({{ months }})
    {% endif %}

)

select * from final
