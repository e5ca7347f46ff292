-- One row per fire IoT alarm (消防物联网告警): raised → confirmed → handled, whether it was a true alarm,
-- and the harmonised alarm type. Re-delivered as the alarm progresses: the latest delivery wins.
{{
    config(
        materialized=fact_materialization(),
        unique_key='record_id',
        incremental_strategy=fact_strategy(),
        partition_by=fact_partitions('raised_on'),
        on_schema_change='append_new_columns',
        post_hook=fact_post_hooks('raised_on'),
    )
}}

{%- set affected = affected_keys('int_fire_alarms__versions', 'record_id', 'fire_alarm',
    code_column='source_alarm_type', harmonised_column='alarm_type',
    new_columns=['raised_on']) %}

with

versions as (

    select * from {{ ref('int_fire_alarms__versions') }}
    where {{ affected }}

),

latest as (

    -- the latest delivery of a record wins (macros/batch_replacement.sql)
    select * from versions
    {{ latest_delivery('record_id') }}

),

alarm_types as (

    select
        source_feed,
        source_code as source_alarm_type,
        harmonised_value as alarm_type
    from {{ ref('stg_raw__code_mappings') }}
    where entity = 'fire_alarm'

),

final as (

    select
        -- ids
        latest.record_id,
        latest.alarm_id,
        latest.device_id,
        latest.uscc,
        latest.jurisdiction_code,
        latest.source_feed,

        -- alarm
        latest.source_alarm_type,
        alarm_types.alarm_type,
        coalesce(latest.is_true_alarm, false) as is_true_alarm,
        latest.town,

        -- raised → confirmed → handled, and the local day raised (Asia/Shanghai, whatever the session zone)
        latest.raised_at,
        {{ local_date('latest.raised_at') }} as raised_on,
        latest.confirmed_at,
        latest.handled_at,
        {{ seconds_between('latest.raised_at', 'latest.confirmed_at') }} as raised_to_confirmed_seconds,
        {{ seconds_between('latest.confirmed_at', 'latest.handled_at') }} as confirmed_to_handled_seconds,
        {{ seconds_between('latest.raised_at', 'latest.handled_at') }} as raised_to_handled_seconds,
        latest.handled_at is not null as is_handled,
        latest.updated_at,

        -- lineage
        latest.source_file,
        latest.batch_id,
        latest.load_date,
        latest.ingested_at

    from latest
    left join alarm_types
        on
            latest.source_feed = alarm_types.source_feed
            and latest.source_alarm_type = alarm_types.source_alarm_type

)

{{ fact_rows('final', 'raised_on', affected) }}
