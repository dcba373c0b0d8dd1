"""The geolocation file: many points per zip prefix, with the real file's quirks.

About a quarter of the rows are exact duplicates of another row; a city is spelled with and
without its accents; a few prefixes appear under two states; a few dozen points lie outside
Brazil. Rows come sorted by zip prefix, as in the real file, in chunks of whole prefixes.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa

from olist_bi.generator.world import REAL, World, count, pick
from olist_bi.generator.writer import strings

CHUNK_ROWS = 500_000
ACCENTED_SHARE = 0.35
POINT_SPREAD_DEGREES = 0.03


def row_count(scale: float) -> int:
    return count(REAL["geolocation"], scale, minimum=200)


def chunks(world: World) -> Iterator[pa.Table]:
    rng = np.random.default_rng([world.seed, 31])
    zips = world.zips
    known = zips.known
    total = row_count(world.scale)
    duplicates = int(round(total * REAL["geolocation_duplicates"] / REAL["geolocation"]))
    unique_total = max(known, total - duplicates)
    duplicates = total - unique_total

    weight = rng.lognormal(0, 1.0, known)
    unique_rows = 1 + rng.multinomial(unique_total - known, weight / weight.sum())
    dup_rows = rng.multinomial(duplicates, unique_rows / unique_rows.sum())
    two_state = np.zeros(known, dtype=bool)
    candidates = np.flatnonzero(unique_rows >= 2)
    two_state[rng.choice(candidates, size=min(len(candidates), count(REAL["two_state_prefixes"], world.scale)), replace=False)] = True
    outside = np.zeros(known, dtype=bool)
    outside[rng.choice(known, size=min(known, count(REAL["outside_brazil_points"], world.scale)), replace=False)] = True

    by_prefix = np.argsort(zips.prefix[:known], kind="stable")
    rows_sorted = np.cumsum((unique_rows + dup_rows)[by_prefix])
    bounds = np.searchsorted(rows_sorted, np.arange(CHUNK_ROWS, rows_sorted[-1], CHUNK_ROWS), side="left") + 1
    for number, members in enumerate(np.split(by_prefix, bounds)):
        if len(members):
            yield _chunk(world, number, members, unique_rows[members], dup_rows[members], two_state[members], outside[members])


def _chunk(world: World, number, members, unique_rows, dup_rows, two_state, outside) -> pa.Table:
    rng = np.random.default_rng([world.seed, 32, number])
    zips, ref = world.zips, world.ref
    owner = np.repeat(np.arange(len(members)), unique_rows)
    first_row = np.cumsum(unique_rows) - unique_rows
    m = len(owner)
    zip_index = members[owner]
    point = zips.center[zip_index] + rng.normal(0, POINT_SPREAD_DEGREES, size=(m, 2))
    away = first_row[outside]
    point[away] = ref.outside_points[pick(rng, np.ones(len(ref.outside_points)), len(away))] + rng.normal(0, 0.01, (len(away), 2))

    city = zips.city[zip_index]
    accented = rng.random(m) < ACCENTED_SHARE
    state = zips.state[zip_index].copy()
    # A two-state prefix keeps its first row in its own state and its last in the next one.
    last_row = first_row + unique_rows - 1
    is_last = np.arange(m) == last_row[owner]
    flipped = two_state[owner] & (is_last | ((np.arange(m) != first_row[owner]) & (rng.random(m) < 0.3)))
    state[flipped] = (state[flipped] + 1) % len(ref.states)

    # Exact duplicates: copies of rows of the same prefix, placed among them.
    copies = first_row[np.repeat(np.arange(len(members)), dup_rows)] + (
        rng.random(dup_rows.sum()) * np.repeat(unique_rows, dup_rows)
    ).astype(np.int64)
    source = np.concatenate([np.arange(m), copies])
    order = np.lexsort((rng.random(len(source)), owner[source]))
    source = source[order]
    names = ref.city_plain + ref.city_accented
    return pa.table(
        {
            "geolocation_zip_code_prefix": zips.prefix[zip_index[source]],
            "geolocation_lat": point[source, 0],
            "geolocation_lng": point[source, 1],
            "geolocation_city": strings(np.where(accented, city + len(ref.city_plain), city)[source], names),
            "geolocation_state": strings(state[source], ref.states),
        }
    )
