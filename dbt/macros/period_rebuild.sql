{#-
    KPI marts are incremental by local month on DuckDB: a night deletes and recomputes only the months its
    batches touch, like dbt's microbatch or insert_overwrite by partition, but with the periods taken from
    the night's changes rather than from a lookback on the clock: a rerun can withdraw a record of any past
    month, and a late day lands in an old one. The months are
      - raw.touched_months: where the stored rows of tonight's keys counted before dbt rebuilt the facts
        (pingan/warehouse/inputs.py reads them first), deadlines passing tonight, remapped entities;
      - where the rebuilt fact rows of those keys (raw.touched_keys) count now.
    On Spark the same months are rewritten by partition (macros/cross_db/month_marts_on_spark.sql).
-#}

{#- 'incremental' on DuckDB, a whole-table build on other engines (Spark builds dim_enterprise, the
    incident pairs and mart_overdue_grid_events whole; the month marts use month_mart_materialization()). -#}
{% macro mart_materialization() -%}
    {{ return('incremental' if target.type == 'duckdb' else 'table') }}
{%- endmacro %}


{#-
    The months to recompute tonight for `entity`, as a query of one date column `month`. `fact` is the
    fact the mart reads, `key` its key and `months` the SQL expressions giving the month(s) a fact row
    counts in (the same ones inputs.period_sources uses on the stored rows).
-#}
{% macro touched_months(entity, fact, key, months) -%}
    {%- set stored = source('raw', 'touched_months') -%}
    {%- set keys = source('raw', 'touched_keys') -%}
    select month from {{ stored }} where entity = '{{ entity }}'
    {%- for month in months %}
    union
    select cast({{ month }} as date) as month from {{ fact }}
    where {{ key }} in (select key from {{ keys }} where entity = '{{ entity }}')
    {%- endfor %}
{%- endmacro %}


{#-
    `date_column` (a DATE) lies in one of the months of `months_query`. Written as a semi-join on the
    column itself over the days of those months, so DuckDB prunes the fact's row groups by their min/max
    (the facts are stored roughly in time order): a few ms at two years, where comparing a computed month
    reads every row.
-#}
{% macro in_months(date_column, months_query) -%}
    {{ return(adapter.dispatch('in_months', 'pingan')(date_column, months_query)) }}
{%- endmacro %}

{% macro default__in_months(date_column, months_query) -%}
    {{ date_column }} in (
        select cast(unnest(generate_series(month, month + interval 1 month - interval 1 day, interval 1 day)) as date)
        from ({{ months_query }}) as months
    )
{%- endmacro %}

{#- Spark reads the facts by their day partitions, so the month of the column is compared directly. -#}
{% macro spark__in_months(date_column, months_query) -%}
    {{ month_of(date_column) }} in (select month from ({{ months_query }}) as months)
{%- endmacro %}


{#- A pre-hook: the months about to be recomputed leave the mart first (a month may come back empty). -#}
{% macro delete_months(month_column, months_query) -%}
    {{ return(adapter.dispatch('delete_months', 'pingan')(month_column, months_query)) }}
{%- endmacro %}

{% macro default__delete_months(month_column, months_query) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where {{ month_column }} in ({{ months_query }})
    {%- endif -%}
{%- endmacro %}

{#- Spark cannot DELETE: the files of those months are noted, and drop_emptied_months() drops the months
    the write did not replace. Renders nothing. -#}
{% macro spark__delete_months(month_column, months_query) -%}
    {%- if execute and is_incremental() -%}
        {%- do note_stale_files(month_column ~ ' in (' ~ months_query ~ ')') -%}
    {%- endif -%}
{%- endmacro %}


{#-
    A post-hook: is_source_stale of the months not recomputed tonight follows the feeds' staleness of this
    build (a feed late tonight flags every row of its jurisdiction); only rows whose flag changes are
    written, which on most nights is none.
-#}
{% macro refresh_source_staleness(entities) -%}
    {#- Spark rewrites the months whose flag changes instead (rebuilt_months()) -#}
    {%- if is_incremental() and target.type != 'spark' -%}
    {%- set current -%}
        coalesce((
            select bool_or(feeds.is_stale) from {{ ref('stg_raw__feeds') }} as feeds
            where
                feeds.entity in ({% for e in entities %}'{{ e }}'{{ ", " if not loop.last }}{% endfor %})
                and feeds.jurisdiction_code = {{ this }}.jurisdiction_code
        ), false)
    {%- endset -%}
    update {{ this }} set is_source_stale = {{ current }}
    where is_source_stale is distinct from {{ current }}
    {%- endif -%}
{%- endmacro %}


{#-
    The months an incident counts in for the incident marts: its own, and those of the incidents within the
    double-report window of it, whose double-report flag it can change (int_incidents__cross_border_pairs).
-#}
{% macro incident_months() -%}
    {%- set window = var('double_report_window_minutes', 30) -%}
    {{ return(touched_months('incident', ref('fct_incidents'), 'record_id', [
        local_month(dbt.dateadd('minute', -window, 'reported_at')),
        local_month(dbt.dateadd('minute', window, 'reported_at')),
    ])) }}
{%- endmacro %}

{#- mart_incident_trends: the touched months and the months a year later (their prior-year column). -#}
{% macro incident_trend_months() -%}
    select month from ({{ incident_months() }}) as touched
    union
    select cast({{ dbt.dateadd('year', 1, 'month') }} as date) from ({{ incident_months() }}) as touched
{%- endmacro %}

{#- mart_grid_event_closure: months of discovery (inputs.py adds those of events turning overdue). -#}
{% macro grid_event_months() -%}
    {{ return(touched_months('grid_event_stage', ref('fct_grid_events'), 'event_id',
                             [month_of('discovered_on')])) }}
{%- endmacro %}

{#- mart_fire_safety: months of inspections and of alarms (inputs.py adds inspections whose
    rectification deadline lies between the last build's date and tonight's). -#}
{% macro fire_safety_months() -%}
    {{ touched_months('fire_inspection', ref('fct_fire_inspections'), 'record_id', [month_of('inspected_on')]) }}
    union
    {{ touched_months('fire_alarm', ref('fct_fire_alarms'), 'record_id', [month_of('raised_on')]) }}
{%- endmacro %}


{#- Tonight's keys of an entity (raw.touched_keys), for marts incremental by key. -#}
{% macro touched_keys(entity) -%}
    select key from {{ source('raw', 'touched_keys') }} where entity = '{{ entity }}'
{%- endmacro %}

{#- A pre-hook: the rows of tonight's keys leave the mart before they are read again. -#}
{% macro delete_touched_keys(key_column, entity) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} where {{ key_column }} in ({{ touched_keys(entity) }})
    {%- endif -%}
{%- endmacro %}

{#- int_incidents__cross_border_pairs: the pairs of tonight's incidents leave before they are paired again. -#}
{% macro delete_pairs_of_touched_incidents() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where
        original_record_id in ({{ touched_keys('incident') }})
        or double_report_record_id in ({{ touched_keys('incident') }})
    {%- endif -%}
{%- endmacro %}
