-- TEMPORARY stand-in for the lead's model on main; deleted when main is merged.
select
    case mapping_table
        when 'qingpu_grid_event' then 'qingpu_grid_events'
        when 'jiashan_grid_event' then 'jiashan_grid_events'
        when 'fire_alarm_type' then 'qingpu_fire_alarms'
        when 'joint_mechanism' then 'pinghu_jinshan_joint_operations'
        when 'qingpu_110' then 'qingpu_110_incidents'
        when 'wujiang_incident' then 'wujiang_incidents'
        when 'jiashan_incident' then 'jiashan_incidents'
    end as source_feed,
    case
        when mapping_table like '%grid_event' then 'grid_event_stage'
        when mapping_table = 'fire_alarm_type' then 'fire_alarm'
        when mapping_table = 'joint_mechanism' then 'joint_operation'
        else 'incident'
    end as entity,
    source_code,
    source_label,
    category as harmonised_value
from {{ ref('category_mappings') }}
