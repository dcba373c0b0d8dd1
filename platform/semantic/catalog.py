"""The semantic catalog: metrics, dimensions and the models they read, from the YAML files
beside this module. Every metric and dimension is defined once, here; the compiler, the CLI,
the BI provisioning and docs/metrics.md all read the same definitions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

HERE = Path(__file__).parent
NAME = re.compile(r"[a-z][a-z0-9_]*")
FORMATS = {"currency", "count", "decimal", "percent"}
DIMENSION_TYPES = {"category", "time", "integer"}


class CatalogError(ValueError):
    """A definition is incomplete or inconsistent; the message names it."""


class UnknownName(KeyError):
    """A metric or dimension name that is not in the catalog; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.message = f"unknown {kind} {name!r}; known {kind}s: {', '.join(sorted(known))}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class SemanticModel:
    name: str
    description: str
    entities: dict[str, str]
    joins: dict[str, str]  # alias -> join clause
    range_dimension: str
    # Its rows are complete periods by construction, or forecasts of periods to come (the
    # forecast mart): complete periods leave it whole.
    always_complete: bool = False
    # Its boolean column that says whether a row falls in the reporting window (the ETL stores
    # it: int_reporting_window); complete periods keep the rows where it is true. Every model
    # that is not always complete has one.
    window_column: str | None = None


@dataclass(frozen=True)
class Dimension:
    name: str
    label: str
    description: str
    sql: str
    type: str = "category"
    grains: tuple[str, ...] = ()
    order: str | None = None  # a template of `column` (the dimension's value) giving its place: listed in that order, not alphabetically
    # grain -> a template of a stored column holding the value at that grain (a time dimension
    # whose models store it, such as the facts' purchase_month): read as is, not truncated per row.
    stored_grains: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def default_grain(self) -> str | None:
        return self.grains[0] if self.grains else None


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    description: str
    counts: str
    model: str
    sql: str
    unit: str
    format: str
    additive: bool
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Catalog:
    models: dict[str, SemanticModel]
    dimensions: dict[str, Dimension]
    metrics: dict[str, Metric]
    macros: str = field(repr=False, default="")

    def metric(self, name: str) -> Metric:
        if name not in self.metrics:
            raise UnknownName("metric", name, list(self.metrics))
        return self.metrics[name]

    def dimension(self, name: str) -> Dimension:
        if name not in self.dimensions:
            raise UnknownName("dimension", name, list(self.dimensions))
        return self.dimensions[name]


def _read(name: str) -> dict:
    return yaml.load((HERE / name).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


@cache
def load() -> Catalog:
    """Read and check the definitions; raise `CatalogError` naming what is wrong."""
    models = {
        name: SemanticModel(
            name,
            spec["description"],
            dict(spec["entities"]),
            dict(spec.get("joins") or {}),
            spec["range_dimension"],
            bool(spec.get("always_complete")),
            spec.get("window_column"),
        )
        for name, spec in _read("models.yaml")["models"].items()
    }
    dimensions = {}
    for name, spec in _read("dimensions.yaml")["dimensions"].items():
        spec = dict(spec)
        spec["grains"] = tuple(spec.get("grains", ()))
        spec["stored_grains"] = dict(spec.get("stored_grains") or {})
        dimensions[name] = Dimension(name=name, **spec)
    metrics = {}
    for name, spec in _read("metrics.yaml")["metrics"].items():
        spec = dict(spec)
        spec["requires"] = tuple(spec.get("requires", ()))
        try:
            metrics[name] = Metric(name=name, **spec)
        except TypeError as e:
            raise CatalogError(f"metric {name}: {e}") from None
    catalog = Catalog(models, dimensions, metrics, (HERE / "macros.sql").read_text(encoding="utf-8"))
    check(catalog)
    return catalog


def check(catalog: Catalog) -> None:
    """Every name is a plain identifier, every text is filled in, every reference resolves."""
    problems = _name_problems(catalog) + _metric_problems(catalog) + _dimension_problems(catalog) + _model_problems(catalog)
    if problems:
        raise CatalogError("the semantic catalog is inconsistent:\n" + "\n".join(f"  - {p}" for p in problems))


def _name_problems(catalog: Catalog) -> list[str]:
    """Every metric, dimension and model name is a lower-case identifier."""
    problems = []
    for kind, items in (("metric", catalog.metrics), ("dimension", catalog.dimensions), ("model", catalog.models)):
        for name in items:
            if not NAME.fullmatch(name):
                problems.append(f"{kind} {name!r}: names are lower-case identifiers")
    return problems


def _metric_problems(catalog: Catalog) -> list[str]:
    """Every metric is documented, reads a known model, has a known format and requires known dimensions."""
    problems = []
    for m in catalog.metrics.values():
        for attribute in ("label", "description", "counts", "unit", "sql"):
            if not str(getattr(m, attribute) or "").strip():
                problems.append(f"metric {m.name}: {attribute} is missing (every metric is documented)")
        if m.model not in catalog.models:
            problems.append(f"metric {m.name}: unknown model {m.model}")
        if m.format not in FORMATS:
            problems.append(f"metric {m.name}: format {m.format!r} is not one of {', '.join(sorted(FORMATS))}")
        for d in m.requires:
            if d not in catalog.dimensions:
                problems.append(f"metric {m.name}: requires unknown dimension {d}")
    return problems


def _dimension_problems(catalog: Catalog) -> list[str]:
    """Every dimension is documented, has a known type, and lists grains (stored ones among them) if and only if it is a time."""
    problems = []
    for d in catalog.dimensions.values():
        for attribute in ("label", "description", "sql"):
            if not str(getattr(d, attribute) or "").strip():
                problems.append(f"dimension {d.name}: {attribute} is missing")
        if d.type not in DIMENSION_TYPES:
            problems.append(f"dimension {d.name}: type {d.type!r} is not one of {', '.join(sorted(DIMENSION_TYPES))}")
        if (d.type == "time") != bool(d.grains):
            problems.append(f"dimension {d.name}: time dimensions, and only they, list grains")
        for grain in d.stored_grains:
            if grain not in d.grains:
                problems.append(f"dimension {d.name}: stored grain {grain!r} is not one of its grains")
    return problems


def _model_problems(catalog: Catalog) -> list[str]:
    """Every model's range dimension is known, and it names a window column unless it is always complete."""
    problems = []
    for model in catalog.models.values():
        if model.range_dimension not in catalog.dimensions:
            problems.append(f"model {model.name}: unknown range_dimension {model.range_dimension}")
        if model.always_complete == bool(model.window_column):
            problems.append(f"model {model.name}: a model that is not always complete, and only such a model, names its window_column")
    return problems
