-- dim_geography: one row per zip prefix with a robust centroid: the median of its points
-- inside Brazil (points outside are ignored), and its most frequent city and state.
-- Prefixes with no point inside Brazil have no coordinates. Grain: zip_code_prefix.
with points as (
    select zip_code_prefix, lat, lng, city, state, is_inside_brazil from stg_geolocation
),
centroids as (
    select
        zip_code_prefix,
        median(lat) filter (where is_inside_brazil) as lat,
        median(lng) filter (where is_inside_brazil) as lng,
        count(*) as points,
        count(*) filter (where not is_inside_brazil) as points_outside_brazil,
    from points
    group by zip_code_prefix
),
states as (
    select zip_code_prefix, state, row_number() over (partition by zip_code_prefix order by count(*) desc, state) as place
    from points
    group by zip_code_prefix, state
),
cities as (
    select zip_code_prefix, city, row_number() over (partition by zip_code_prefix order by count(*) desc, city) as place
    from (select zip_code_prefix, strip_accents(city) as city from points)
    group by zip_code_prefix, city
),
modes as (
    select s.zip_code_prefix, s.state, c.city
    from states as s
    left join cities as c on c.zip_code_prefix = s.zip_code_prefix and c.place = 1
    where s.place = 1
)
select
    c.zip_code_prefix,
    m.city,
    m.state,
    c.lat,
    c.lng,
    cast(c.points as integer) as points,
    cast(c.points_outside_brazil as integer) as points_outside_brazil,
from centroids as c
join modes as m on m.zip_code_prefix = c.zip_code_prefix
