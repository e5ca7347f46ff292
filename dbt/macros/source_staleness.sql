{#-
    The staleness of the feeds a KPI row is built from, per jurisdiction: true when any feed of the given
    canonical entities in that jurisdiction is stale (int_feed_staleness, the lead's freshness model).
    Marts left join it on jurisdiction_code and coalesce to false: a jurisdiction without a feed of
    that entity has nothing to be stale.
-#}
{% macro source_staleness(entities) -%}
    select
        jurisdiction_code,
        bool_or(is_stale) as is_source_stale
    from {{ ref('int_feed_staleness') }}
    where entity in ({% for e in entities %}'{{ e }}'{{ ", " if not loop.last }}{% endfor %})
    group by jurisdiction_code
{%- endmacro %}
