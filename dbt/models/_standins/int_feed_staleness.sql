-- TEMPORARY stand-in for the lead's model on main; deleted when main is merged.
select * from (values ('incident', '310118', false)) as t (entity, jurisdiction_code, is_stale)
