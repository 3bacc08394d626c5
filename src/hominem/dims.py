"""The reward dimensions: names, definitions, rubric anchors and default weights.

Everything is read from the packaged `rubric.yaml`, the single source of truth that the teacher
templates, the verifier and the docs share.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml


@dataclass(frozen=True)
class Dimension:
    name: str
    definition: str
    low: str
    mid: str
    high: str
    not_applicable: str
    weight: float = 1.0  # default weight of this dimension in a weighted-sum scalar


@dataclass(frozen=True)
class Rubric:
    version: int
    dim_min: int
    dim_max: int
    scalar_min: int
    scalar_max: int
    scalar_definition: str
    null_policy: str
    dimensions: tuple[Dimension, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def get(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(f"unknown dimension {name!r}; the rubric has {', '.join(self.names)}")


@lru_cache(maxsize=1)
def load_rubric() -> Rubric:
    raw = yaml.safe_load(resources.files("hominem").joinpath("rubric.yaml").read_text("utf-8"))
    dims = tuple(
        Dimension(
            name=d["name"],
            definition=d["definition"],
            low=d["anchors"]["low"],
            mid=d["anchors"]["mid"],
            high=d["anchors"]["high"],
            not_applicable=d["not_applicable"],
            weight=float(d.get("weight", 1.0)),
        )
        for d in raw["dimensions"]
    )
    return Rubric(
        version=int(raw["version"]),
        dim_min=int(raw["scale"]["min"]),
        dim_max=int(raw["scale"]["max"]),
        scalar_min=int(raw["scalar"]["scale"]["min"]),
        scalar_max=int(raw["scalar"]["scale"]["max"]),
        scalar_definition=" ".join(raw["scalar"]["definition"].split()),
        null_policy=" ".join(raw["null_policy"].split()),
        dimensions=dims,
    )


DIMENSIONS: tuple[str, ...] = (
    "empathy",
    "social_coherence",
    "agency_support",
    "epistemic_integrity",
    "harm_minimisation",
    "narrative_alignment",
    "curiosity_exploration",
)
"""The seven default dimensions, in rubric order (checked against rubric.yaml by the tests)."""
