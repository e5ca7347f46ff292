-- One row per batch and rule: what the loader and the quality gate found, as data next to the marts.
select
    batch_id || ':' || stage || ':' || rule as quality_result_id,
    feed,
    entity,
    jurisdiction_code,
    load_date,
    batch_id,
    status as batch_status,
    is_current,
    stage,
    rule,
    severity,
    outcome,
    rows_read,
    rows_failed,
    rows_quarantined,
    case when rows_read > 0 then rows_failed::double / rows_read end as rejected_share,
    cause
from {{ source('quality', 'quality_results') }}
