"""Deterministic 32-hex-digit ids: a pure function of (seed, kind of entity, entity number).

splitmix64 is a bijection on 64-bit integers, so distinct entity numbers under one salt
give distinct ids; the salt separates kinds of entity, seeds and increments.
"""

from __future__ import annotations

import numpy as np

TAGS = {
    "order": 1,
    "customer": 2,
    "person": 3,
    "seller": 4,
    "product": 5,
    "review": 6,
    "review_extra": 7,
}


def splitmix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def salt(seed: int, kind: str, increment: int = 0) -> int:
    """The salt of one kind of id; `increment` (0 for the base drop) separates increments."""
    mixed = (seed * 1_000_003 + TAGS[kind] * 7_919 + increment * 104_729) % (1 << 63)
    return int(splitmix64(np.array([mixed]))[0])


def id_columns(name: str, salt_value: int, index: np.ndarray) -> dict[str, np.ndarray]:
    """The two uint64 halves of the ids of `index`, as the writer expects them."""
    index = index.astype(np.uint64)
    return {
        f"{name}__hi": splitmix64(index ^ np.uint64(salt_value)),
        f"{name}__lo": splitmix64(index ^ np.uint64(salt_value ^ 0x5DEECE66D)),
    }
