{#-
    Great-circle distance in metres between two WGS-84 points (haversine, Earth radius 6,371,008.8 m).
    Plain trigonometry that DuckDB and Spark both run; good to about 0.5 % at the delta's scale, far
    below the radii the marts use. Null when any coordinate is null.
-#}
{% macro distance_m(lat1, lon1, lat2, lon2) -%}
    (2 * 6371008.8 * asin(sqrt(
        power(sin(radians({{ lat2 }} - {{ lat1 }}) / 2), 2)
        + cos(radians({{ lat1 }})) * cos(radians({{ lat2 }}))
          * power(sin(radians({{ lon2 }} - {{ lon1 }}) / 2), 2)
    )))
{%- endmacro %}
