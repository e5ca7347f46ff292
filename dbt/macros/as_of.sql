{#-
    The moment KPIs are measured at ("is this open item overdue?"): the end of the build's logical day,
    i.e. local midnight (Asia/Shanghai, whatever the session's zone) after `build_date` (raw.feeds: the day
    `pingan build` builds for, by default the latest committed load date). Not the wall clock, so a rebuild of
    the same lake gives the same marts and a demo of past days reads as those days did. Falls back to
    the start of the dbt run when no feed is registered.
-#}
{% macro as_of_instant() -%}
    (
        select coalesce(
            cast({{ instant_at_local(dbt.dateadd('day', 1, 'max(build_date)')) }} as {{ type_instant() }}),
            cast('{{ run_started_at.isoformat() }}' as {{ type_instant() }})
        )
        from {{ ref('stg_raw__feeds') }}
    )
{%- endmacro %}

{#- The build's logical day itself (a DATE), for date-valued deadlines such as rectification_deadline. -#}
{% macro as_of_date() -%}
    (
        select coalesce(max(build_date), cast('{{ run_started_at.date().isoformat() }}' as date))
        from {{ ref('stg_raw__feeds') }}
    )
{%- endmacro %}
