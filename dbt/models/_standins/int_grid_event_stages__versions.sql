-- TEMPORARY stand-in for the lead's model on main; deleted when main is merged.
select * from {{ ref('stg_qingpu__grid_event_stages') }}
union all by name
select * from {{ ref('stg_jiashan__grid_event_stages') }}
