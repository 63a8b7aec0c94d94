"""The ranking feature contract: names, order, kinds, cardinalities and dense scaling.

Written once by feature engineering (:data:`~mlrec.core.paths.FEATURES_SCRIPT`) and read by everything
else — training, ONNX export, the Feast feature views, the Triton config and the online server —
so no component re-declares the features (the seed's 59, or the served ranker's ~70). The model input
is one float32 row per (user, item) in :attr:`FeatureMeta.names` order: sparse id fields, then sparse
side fields, then dense fields (user, item, and request-time features, see :data:`Owner`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from mlrec.core.errors import MlrecError
from mlrec.core.io import write_json
from mlrec.core.paths import FEATURES_SCRIPT

Kind = Literal["sparse_id", "sparse_side", "dense"]
Owner = Literal["user", "item", "request"]  # request: computed per request from the recall channels, not stored
KINDS: tuple[str, ...] = ("sparse_id", "sparse_side", "dense")


_RERUN = f"re-run `python {FEATURES_SCRIPT}`"


class FeatureMetaError(MlrecError, ValueError):
    """The saved feature meta is missing or does not describe a valid model input."""


@dataclass(frozen=True)
class Feature:
    name: str
    kind: Kind
    owner: Owner
    cardinality: int = 0  # sparse: values are codes 0..cardinality-1 (0 = unknown)
    mean: float = 0.0  # dense: train mean, subtracted before serving
    std: float = 1.0  # dense: train std (1.0 when the column is constant)


@dataclass(frozen=True)
class FeatureMeta:
    features: tuple[Feature, ...]
    version: int = 1
    extra: dict = field(default_factory=dict)  # e.g. dataset name, row counts

    def __post_init__(self) -> None:
        order = [KINDS.index(f.kind) for f in self.features]
        if order != sorted(order):
            raise FeatureMetaError("features must be ordered sparse_id, sparse_side, dense")
        names = self.names
        if len(set(names)) != len(names):
            raise FeatureMetaError("duplicate feature names")
        for f in self.features:
            if f.kind != "dense" and f.cardinality < 2:
                raise FeatureMetaError(f"sparse feature {f.name!r} needs cardinality >= 2")

    # -- views ---------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def of_kind(self, kind: Kind) -> list[Feature]:
        return [f for f in self.features if f.kind == kind]

    def of_owner(self, owner: Owner) -> list[Feature]:
        return [f for f in self.features if f.owner == owner]

    def id_space(self, owner: Owner) -> int:
        """Length of the ``owner``'s id-indexed tables (max id + 1): the id feature's cardinality, or
        ``extra["n_<owner>s"]`` for a meta that leaves the ids out of the model input."""
        for f in self.features:
            if f.kind == "sparse_id" and f.owner == owner:
                return f.cardinality
        try:
            return int(self.extra[f"n_{owner}s"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FeatureMetaError(f"feature meta has no {owner} id feature and no n_{owner}s", _RERUN) from exc

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def sparse_id_dims(self) -> list[int]:
        return [f.cardinality for f in self.of_kind("sparse_id")]

    @property
    def sparse_side_dims(self) -> list[int]:
        return [f.cardinality for f in self.of_kind("sparse_side")]

    @property
    def dense_dim(self) -> int:
        return len(self.of_kind("dense"))

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"version": self.version, "features": [asdict(f) for f in self.features], "extra": self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureMeta:
        try:
            feats = tuple(Feature(**f) for f in data["features"])
            return cls(features=feats, version=int(data.get("version", 1)), extra=dict(data.get("extra", {})))
        except (KeyError, TypeError) as exc:
            raise FeatureMetaError(f"malformed feature meta: {exc}", _RERUN) from exc

    def save(self, path: Path) -> None:
        write_json(path, self.to_dict(), indent=1)

    @classmethod
    def load(cls, path: Path) -> FeatureMeta:
        if not path.is_file():
            raise FeatureMetaError(f"{path}: feature meta not found", f"run `python {FEATURES_SCRIPT}` first")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as exc:
            raise FeatureMetaError(f"{path}: not valid JSON ({exc})", _RERUN) from exc
