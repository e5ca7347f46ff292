{#-
    Local calendar periods of a TIMESTAMPTZ instant, computed explicitly in Asia/Shanghai (local_time in
    cross_db/timestamps.sql) and never by a cast through the session's TimeZone: the districts' days and
    months are the same whatever zone the build or a reader's session is set to.
-#}
{% macro local_date(instant, zone='Asia/Shanghai') -%}
    cast({{ local_time(instant, zone) }} as date)
{%- endmacro %}

{#- The first day of the local calendar month of an instant, as a DATE. -#}
{% macro local_month(instant, zone='Asia/Shanghai') -%}
    cast({{ dbt.date_trunc('month', local_time(instant, zone)) }} as date)
{%- endmacro %}

{#- The first day of the month of a DATE (a date has no zone). -#}
{% macro month_of(day) -%}
    cast({{ dbt.date_trunc('month', day) }} as date)
{%- endmacro %}
