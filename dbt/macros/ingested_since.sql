{#-
    A predicate selecting raw rows ingested after what `fact_model` already holds, feed by feed.

    Facts are incremental, but deduplication (latest delivery of a record wins) is a window over the
    record's versions, which DuckDB cannot push a later filter through. Filtering before the window is
    equivalent (a record has a version newer than the watermark iff its latest version is newer), so the
    intermediate models apply this first and the nightly build reads only the new day's row groups.
    The watermark is per feed because feeds load independently; it is rendered as literals so DuckDB
    can prune Parquet row groups on their ingested_at statistics.
    Returns `true` (everything) when the fact does not exist yet or on --full-refresh.
-#}
{% macro ingested_since(fact_model) -%}
    {#- not ref(): the fact depends on the model calling this, and a ref back would be a cycle -#}
    {%- set fact = none -%}
    {%- if execute -%}
        {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
                       | selectattr('name', 'equalto', fact_model) | first -%}
        {%- set fact = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
    {%- endif -%}
    {%- if fact is none or flags.FULL_REFRESH -%}
        true
    {%- else -%}
        {%- set marks = run_query(
            "select source_feed, cast(max(ingested_at) as varchar) from " ~ fact ~ " group by 1 order by 1"
        ) -%}
        {%- if marks.rows | length == 0 -%}
            true
        {%- else -%}
            (
            {%- for feed, mark in marks.rows %}
                (source_feed = '{{ feed }}' and ingested_at > cast('{{ mark }}' as timestamp with time zone)) or
            {%- endfor %}
                source_feed not in ({% for feed, _ in marks.rows %}'{{ feed }}'{{ ", " if not loop.last }}{% endfor %})
            )
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
