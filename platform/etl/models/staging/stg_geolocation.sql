-- stg_geolocation: every point of the source (duplicates included), flagged when outside
-- Brazil's bounding box. No grain: many points per zip prefix.
select
    geolocation_zip_code_prefix as zip_code_prefix,
    geolocation_lat as lat,
    geolocation_lng as lng,
    geolocation_city as city,
    geolocation_state as state,
    geolocation_lat between -33.75 and 5.27 and geolocation_lng between -73.99 and -34.79 as is_inside_brazil,
from raw.geolocation
