"""The generator's world: reference data, zip prefixes, people, sellers and products.

Everything here is a function of (scale, seed) alone, so a later increment rebuilds the same
world as the base drop it extends and its orders point at the same products, sellers and
returning customers. Arrays are indexed by entity number; nothing here is per order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml

# Row counts and quirk counts of the real files at scale 1 (OLIST_DATA.md).
REAL = {
    "orders": 99_441,
    "distinct_customers": 96_096,
    "repeat_customers": 2_997,
    "sellers": 3_095,
    "products": 32_951,
    "geolocation": 1_000_163,
    "geolocation_prefixes": 19_015,
    "geolocation_duplicates": 261_831,
    "unknown_customer_zips": 157,
    "products_without_category": 610,
    "products_without_dimensions": 2,
    "products_untranslated": 13,
    "two_state_prefixes": 8,
    "outside_brazil_points": 30,
}
MAX_PREFIXES = 40_000  # keeps every state's CEP range able to hold its share of prefixes


def count(real: int, scale: float, minimum: int = 1) -> int:
    """A real count scaled, never below `minimum` so that every quirk shows at small scales."""
    return max(minimum, int(round(real * scale)))


@dataclass(frozen=True)
class Reference:
    states: list[str]
    customer_share: np.ndarray
    seller_share: np.ndarray
    zip_ranges: list[list[tuple[int, int]]]
    center: np.ndarray  # (state, [lat, lng])
    transit: np.ndarray
    city_plain: list[str]
    city_accented: list[str]
    city_state: np.ndarray
    city_weight: np.ndarray
    categories: list[str]
    categories_english: list[str]
    category_weight: np.ndarray
    untranslated: list[str]
    lat_box: tuple[float, float]
    lng_box: tuple[float, float]
    outside_points: np.ndarray
    titles: dict[str, list[str]]
    messages: dict[str, list[str]]


@cache
def reference() -> Reference:
    data = yaml.safe_load((Path(__file__).parent / "reference.yaml").read_text(encoding="utf-8"))
    states = list(data["states"])
    plain, accented, city_state, city_weight = [], [], [], []
    for i, code in enumerate(states):
        for name, accent, weight in data["states"][code]["cities"]:
            plain.append(name)
            accented.append(accent)
            city_state.append(i)
            city_weight.append(weight)

    def share(key: str) -> np.ndarray:
        values = np.array([data["states"][s][key] for s in states], dtype=float)
        return values / values.sum()

    return Reference(
        states=states,
        customer_share=share("customer_share"),
        seller_share=share("seller_share"),
        zip_ranges=[[tuple(r) for r in data["states"][s]["zips"]] for s in states],
        center=np.array([data["states"][s]["center"] for s in states], dtype=float),
        transit=np.array([data["states"][s]["transit"] for s in states], dtype=float),
        city_plain=plain,
        city_accented=accented,
        city_state=np.array(city_state),
        city_weight=np.array(city_weight, dtype=float),
        categories=[c[0] for c in data["categories"]],
        categories_english=[c[1] for c in data["categories"]],
        category_weight=np.array([c[2] for c in data["categories"]], dtype=float),
        untranslated=list(data["untranslated_categories"]),
        lat_box=tuple(data["brazil_box"]["lat"]),
        lng_box=tuple(data["brazil_box"]["lng"]),
        outside_points=np.array(data["outside_brazil_points"], dtype=float),
        titles=data["review_titles"],
        messages=data["review_messages"],
    )


def allocate(total: int, shares: np.ndarray, minimum: int = 0) -> np.ndarray:
    """Split `total` into integer parts proportional to `shares` (largest remainder)."""
    raw = shares / shares.sum() * total
    parts = np.maximum(np.floor(raw).astype(np.int64), minimum)
    remainder = total - parts.sum()
    if remainder > 0:
        parts[np.argsort(-(raw - np.floor(raw)), kind="stable")[:remainder]] += 1
    elif remainder < 0:  # the minimum pushed the sum over: take it from the largest part
        parts[np.argmax(parts)] += remainder
    return parts


def pick(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """Draw n indices with the given (unnormalised) weights."""
    cumulative = np.cumsum(weights)
    return np.minimum(np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right"), len(weights) - 1)


@dataclass
class Zips:
    """Zip prefixes, grouped by state: the geolocation universe first, then a few prefixes
    that customers use but the geolocation file lacks (as in the real files)."""

    prefix: np.ndarray
    state: np.ndarray
    city: np.ndarray
    center: np.ndarray  # (zip, [lat, lng])
    known: int  # zips [0, known) are in the geolocation file
    state_start: np.ndarray  # first known zip of each state
    state_count: np.ndarray

    def draw(self, rng: np.random.Generator, shares: np.ndarray, n: int, unknown_share: float = 0.0) -> np.ndarray:
        """Zip indices for n entities spread over states by `shares`."""
        state = pick(rng, shares, n)
        index = self.state_start[state] + (rng.random(n) * self.state_count[state]).astype(np.int64)
        if unknown_share and len(self.prefix) > self.known:
            unknown = rng.random(n) < unknown_share
            index[unknown] = self.known + rng.integers(0, len(self.prefix) - self.known, unknown.sum())
        return index


def build_zips(ref: Reference, scale: float, rng: np.random.Generator) -> Zips:
    total = min(MAX_PREFIXES, count(REAL["geolocation_prefixes"], scale, minimum=100))
    per_state = allocate(total, ref.customer_share, minimum=1)
    extra = allocate(count(REAL["unknown_customer_zips"], scale), ref.customer_share)
    prefixes, states, known_parts, unknown_parts = [], [], [], []
    for i, ranges in enumerate(ref.zip_ranges):
        pool = np.concatenate([np.arange(lo, hi + 1) for lo, hi in ranges])
        # a small state's range holds fewer prefixes than a large scale asks of it (scale 100): all of them
        per_state[i] = min(per_state[i], len(pool))
        extra[i] = min(extra[i], len(pool) - per_state[i])
        chosen = rng.choice(pool, size=per_state[i] + extra[i], replace=False)
        known_parts.append((i, np.sort(chosen[: per_state[i]])))
        unknown_parts.append((i, np.sort(chosen[per_state[i] :])))
    for i, chosen in known_parts + unknown_parts:
        prefixes.append(chosen)
        states.append(np.full(len(chosen), i))
    prefix = np.concatenate(prefixes)
    state = np.concatenate(states)
    city = np.empty(len(prefix), dtype=np.int64)
    for i in range(len(ref.states)):
        members = np.flatnonzero(state == i)
        candidates = np.flatnonzero(ref.city_state == i)
        city[members] = candidates[pick(rng, ref.city_weight[candidates], len(members))]
    spread = rng.normal(0.0, 0.6, size=(len(prefix), 2))
    center = ref.center[state] + spread
    center[:, 0] = center[:, 0].clip(ref.lat_box[0] + 0.5, ref.lat_box[1] - 0.5)
    center[:, 1] = center[:, 1].clip(ref.lng_box[0] + 0.5, ref.lng_box[1] - 0.5)
    known = int(per_state.sum())
    state_start = np.concatenate([[0], np.cumsum(per_state)[:-1]])
    return Zips(prefix, state, city, center, known, state_start, per_state)


@dataclass
class Sellers:
    zip: np.ndarray
    popularity: np.ndarray


@dataclass
class Products:
    category: np.ndarray  # index into categories, then untranslated ones; -1: none
    seller: np.ndarray
    price_cents: np.ndarray
    freight_cents: np.ndarray
    name_length: np.ndarray
    description_length: np.ndarray
    photos: np.ndarray
    weight_g: np.ndarray
    dims: np.ndarray  # (product, [length, height, width])
    has_dims: np.ndarray
    popularity: np.ndarray


@dataclass
class World:
    scale: float
    seed: int
    ref: Reference
    zips: Zips
    persons: int  # base-drop customers (customer_unique_id)
    person_zip: np.ndarray
    repeaters: int
    sellers: Sellers
    products: Products

    def category_names(self) -> list[str]:
        return self.ref.categories + self.ref.untranslated


def build_world(scale: float, seed: int) -> World:
    ref = reference()
    rng = np.random.default_rng([seed, 11])
    zips = build_zips(ref, scale, rng)

    orders = count(REAL["orders"], scale, minimum=20)
    persons = max(10, int(round(orders * REAL["distinct_customers"] / REAL["orders"])))
    repeaters = min(persons, orders - persons, max(1, int(round(persons * REAL["repeat_customers"] / REAL["distinct_customers"]))))
    unknown_share = REAL["unknown_customer_zips"] / REAL["orders"]
    person_zip = zips.draw(rng, ref.customer_share, persons, unknown_share)

    n_sellers = count(REAL["sellers"], scale, minimum=10)
    sellers = Sellers(
        zip=zips.draw(rng, ref.seller_share, n_sellers),
        popularity=1.0 / np.arange(1, n_sellers + 1) ** 0.9,
    )
    rng.shuffle(sellers.popularity)
    return World(scale, seed, ref, zips, persons, person_zip, repeaters, sellers, build_products(ref, scale, rng, sellers))


def build_products(ref: Reference, scale: float, rng: np.random.Generator, sellers: Sellers) -> Products:
    n = count(REAL["products"], scale, minimum=50)
    category = pick(rng, ref.category_weight, n)
    order = rng.permutation(n)
    no_category = order[: count(REAL["products_without_category"], scale)]
    untranslated = order[len(no_category) : len(no_category) + count(REAL["products_untranslated"], scale, minimum=len(ref.untranslated))]
    category[no_category] = -1
    category[untranslated] = len(ref.categories) + np.arange(len(untranslated)) % len(ref.untranslated)
    no_dims = order[len(no_category) + len(untranslated) :][: count(REAL["products_without_dimensions"], scale)]

    weight = np.clip(rng.lognormal(np.log(750), 1.3, n), 0, 40_425).round()
    side = np.cbrt(np.maximum(weight, 50) * 4.0)
    dims = np.stack(
        [
            np.clip(side * rng.uniform(0.9, 1.8, n), 7, 105),
            np.clip(side * rng.uniform(0.3, 1.0, n), 2, 105),
            np.clip(side * rng.uniform(0.7, 1.4, n), 6, 118),
        ],
        axis=1,
    ).round()
    has_dims = np.ones(n, dtype=bool)
    has_dims[no_dims] = False
    price = np.clip(rng.lognormal(np.log(76.5), 0.95, n), 0.85, 6735)
    price[:2] = 6735.0, 0.85  # the real range's ends
    freight = np.clip(rng.lognormal(np.log(16.0), 0.5, n) * (1 + weight / 20_000), 0, 409)
    return Products(
        category=category,
        seller=pick(rng, sellers.popularity, n),
        price_cents=(price * 100).round().astype(np.int64),
        freight_cents=(freight * 100).round().astype(np.int64),
        name_length=np.clip(rng.normal(48, 10, n), 5, 76).round(),
        description_length=np.clip(rng.lognormal(np.log(600), 0.7, n), 4, 3992).round(),
        photos=np.clip(1 + rng.poisson(1.2, n), 1, 20),
        weight_g=weight,
        dims=dims,
        has_dims=has_dims,
        popularity=np.maximum(rng.lognormal(0, 1.4, n), np.r_[1.0, 1.0, np.zeros(n - 2)]),
    )
