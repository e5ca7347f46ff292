-- Border checkpoints under joint watch (青吴嘉: land crossings 道口 and river mouths 河口) with their
-- WGS-84 position, from the ref_checkpoints seed. Names are synthetic (is_synthetic_name).
with

checkpoints as (

    select * from {{ ref('ref_checkpoints') }}

),

final as (

    select
        checkpoint_id,
        kind,
        name,
        jurisdiction_code,
        town_name,
        cast(lat as double) as lat,
        cast(lon as double) as lon,
        cast(is_synthetic_name as boolean) as is_synthetic_name
    from checkpoints

)

select * from final
