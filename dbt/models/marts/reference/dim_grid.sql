-- Grids (网格) with their town and that town's border flag, from the ref_grids seed.
with

grids as (

    select * from {{ ref('ref_grids') }}

),

towns as (

    select * from {{ ref('ref_towns') }}

),

final as (

    select
        grids.grid_id,
        grids.jurisdiction_code,
        grids.town_name,
        towns.town_code,
        coalesce(towns.is_border_town, false) as is_border_town
    from grids
    left join towns
        on
            grids.jurisdiction_code = towns.jurisdiction_code
            and grids.town_name = towns.town_name

)

select * from final
