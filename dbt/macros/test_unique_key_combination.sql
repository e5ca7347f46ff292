{#-
    Generic test: the given columns together identify a row (the grain of an aggregate mart). Nulls
    compare equal, as in GROUP BY, so a null town is one group, not many.
-#}
{% test unique_key_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as rows_in_group
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
