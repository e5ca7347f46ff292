{#-
    The first day of the calendar month of an instant, as a DATE, in the session's time zone: the build
    sets Asia/Shanghai (profiles.yml), so months are the districts' local months.
-#}
{% macro local_month(instant) -%}
    cast({{ dbt.date_trunc('month', instant) }} as date)
{%- endmacro %}
