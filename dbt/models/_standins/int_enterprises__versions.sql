-- TEMPORARY stand-in for the lead's model on main; deleted when main is merged.
select * from {{ ref('stg_qingpu__enterprises') }}
