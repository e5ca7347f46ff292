-- One risk profile per enterprise (USCC, current registry state): a score from 0 to 100, the sum of five
-- capped components, each a column so the score can be explained:
--   tax_status_points    40 if the tax status is 非正常户 (abnormal taxpayer), else 0
--   credit_rating_points tax credit rating D 25, C 15, M 5, A/B 0, unrated 5
--   open_hazard_points   5 per fire hazard found and not yet rectified (all inspections), at most 20
--   true_alarm_points    2 per true IoT fire alarm of the unit's devices (all time), at most 10
--   incident_points      1 per incident reported at the enterprise's registered address, at most 5
-- risk_level: high from 50, medium from 25, else low.
with

enterprises as (

    select * from {{ ref('dim_enterprise') }}
    where is_current

),

hazards as (

    select
        uscc,
        sum(open_hazards) as open_hazards,
        count(*) as inspections
    from {{ ref('fct_fire_inspections') }}
    group by uscc

),

alarms as (

    select
        uscc,
        sum(case when is_true_alarm then 1 else 0 end) as true_alarms,
        count(*) as alarms
    from {{ ref('fct_fire_alarms') }}
    group by uscc

),

incidents_at_address as (

    select
        enterprises.uscc,
        count(*) as incidents
    from enterprises
    inner join {{ ref('int_incidents__double_reports_flagged') }} as incidents
        on trim(incidents.address) = trim(enterprises.address)
    where not incidents.is_double_report
    group by enterprises.uscc

),

components as (

    select
        enterprises.uscc,
        enterprises.jurisdiction_code,
        enterprises.enterprise_name,
        enterprises.town,
        enterprises.industry_code,
        enterprises.registration_status,
        enterprises.tax_credit_rating,
        enterprises.is_abnormal_tax_status,
        coalesce(hazards.inspections, 0) as inspections,
        coalesce(hazards.open_hazards, 0) as open_hazards,
        coalesce(alarms.alarms, 0) as alarms,
        coalesce(alarms.true_alarms, 0) as true_alarms,
        coalesce(incidents_at_address.incidents, 0) as incidents_at_address,
        case when enterprises.is_abnormal_tax_status then 40 else 0 end as tax_status_points,
        case enterprises.tax_credit_rating
            when 'D' then 25
            when 'C' then 15
            when 'M' then 5
            when 'B' then 0
            when 'A' then 0
            else 5
        end as credit_rating_points,
        least(5 * coalesce(hazards.open_hazards, 0), 20) as open_hazard_points,
        least(2 * coalesce(alarms.true_alarms, 0), 10) as true_alarm_points,
        least(coalesce(incidents_at_address.incidents, 0), 5) as incident_points
    from enterprises
    left join hazards on enterprises.uscc = hazards.uscc
    left join alarms on enterprises.uscc = alarms.uscc
    left join incidents_at_address on enterprises.uscc = incidents_at_address.uscc

),

scored as (

    select
        components.*,
        components.tax_status_points
        + components.credit_rating_points
        + components.open_hazard_points
        + components.true_alarm_points
        + components.incident_points
            as risk_score
    from components

),

staleness as (

    {{ source_staleness(['enterprise', 'fire_inspection', 'fire_alarm', 'incident']) }}

),

final as (

    select
        scored.uscc,
        scored.jurisdiction_code,
        scored.enterprise_name,
        scored.town,
        scored.industry_code,
        scored.registration_status,
        scored.tax_credit_rating,
        scored.is_abnormal_tax_status,
        cast(scored.inspections as bigint) as inspections,
        cast(scored.open_hazards as bigint) as open_hazards,
        cast(scored.alarms as bigint) as alarms,
        cast(scored.true_alarms as bigint) as true_alarms,
        cast(scored.incidents_at_address as bigint) as incidents_at_address,
        cast(scored.tax_status_points as integer) as tax_status_points,
        cast(scored.credit_rating_points as integer) as credit_rating_points,
        cast(scored.open_hazard_points as integer) as open_hazard_points,
        cast(scored.true_alarm_points as integer) as true_alarm_points,
        cast(scored.incident_points as integer) as incident_points,
        cast(scored.risk_score as integer) as risk_score,
        case
            when scored.risk_score >= 50 then 'high'
            when scored.risk_score >= 25 then 'medium'
            else 'low'
        end as risk_level,
        coalesce(staleness.is_source_stale, false) as is_source_stale
    from scored
    left join staleness
        on scored.jurisdiction_code = staleness.jurisdiction_code

)

select * from final
