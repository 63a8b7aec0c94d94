"""Build a dataset's raw folder once, atomically, and load it back with every check applied.

A raw folder counts as prepared when its ``manifest.json`` exists, was written for the same
parameters (e.g. synthetic scale and seed) and still matches the three files' sizes. The folder
is built in a hidden sibling and renamed into place only after it loaded cleanly, and the
manifest is its last file, so a crash or Ctrl-C never leaves a half-written dataset behind.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from mlrec.core.constants import SEED
from mlrec.core.io import atomic_path
from mlrec.core.log import kv
from mlrec.core.paths import Paths
from mlrec.data import ml1m, ml100k, ml_csv, synthetic
from mlrec.data.errors import DataError, refetch_hint
from mlrec.data.movielens import RAW_FILES, check_references, load_movies, load_ratings, load_users

log = logging.getLogger(__name__)

DATASETS = ("ml-100k", "ml-1m", *ml_csv.RELEASES, "synthetic")
DEFAULT_SCALE = 1_000_000
MANIFEST = "manifest.json"
EXPECTED_COUNTS = {
    "ml-100k": ml100k.EXPECTED_COUNTS,
    "ml-1m": ml1m.EXPECTED_COUNTS,
    **{name: release.counts for name, release in ml_csv.RELEASES.items()},
}


def _params(name: str, scale: int | None, seed: int, shape: str | None = None) -> dict[str, Any]:
    """What the folder's content depends on; a change means a rebuild."""
    if name == "synthetic":
        params: dict[str, Any] = {
            "n_ratings": int(scale or DEFAULT_SCALE),
            "seed": int(seed),
            "generator_version": synthetic.GENERATOR_VERSION,
        }
        if shape is not None:  # a release's sizes, and its name, in the manifest
            spec = synthetic.SyntheticSpec.of_shape(shape, seed)
            params.update(shape=shape, n_ratings=spec.n_ratings, n_users=spec.n_users, n_items=spec.n_items)
        return params
    if name == "ml-100k":
        return {"source": ml100k.WHEEL_NAME, "sha256": ml100k.WHEEL_SHA256}
    if name in ml_csv.RELEASES:
        return {"source": ml_csv.RELEASES[name].url(name), "md5": ml_csv.RELEASES[name].md5}
    return {"source": ml1m.URL, "sha256": ml1m.SHA256}


def read_manifest(raw_dir: Path) -> dict[str, Any] | None:
    path = Path(raw_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _sizes_match(raw_dir: Path, manifest: dict[str, Any]) -> bool:
    sizes = manifest.get("sizes", {})
    return all((raw_dir / f).is_file() and (raw_dir / f).stat().st_size == sizes.get(f) for f in RAW_FILES)


def is_prepared(raw_dir: Path, params: dict[str, Any]) -> bool:
    """True when the folder holds the three files a manifest for ``params`` describes."""
    manifest = read_manifest(raw_dir)
    return manifest is not None and manifest.get("params") == params and _sizes_match(Path(raw_dir), manifest)


def load_dataset(raw_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(users, movies, ratings) from a raw folder, with ratings of unknown users/items rejected."""
    raw_dir = Path(raw_dir)
    manifest = read_manifest(raw_dir)
    if manifest is not None and not _sizes_match(raw_dir, manifest):
        raise DataError(f"{raw_dir}: file sizes differ from {MANIFEST} (truncated or edited)", refetch_hint(raw_dir))
    users, movies = load_users(raw_dir), load_movies(raw_dir)
    ratings = check_references(load_ratings(raw_dir), users, movies, raw_dir)
    return users, movies, ratings


def _build(name: str, out_dir: Path, paths: Paths, params: dict[str, Any]) -> None:
    if name == "ml-100k":
        ml100k.prepare_ml100k(out_dir, paths.cache_dir)
    elif name == "ml-1m":
        ml1m.prepare_ml1m(out_dir, paths.cache_dir)
    elif name in ml_csv.RELEASES:
        ml_csv.prepare_csv_release(name, out_dir, paths.cache_dir)
    else:
        synthetic.prepare_synthetic(
            out_dir,
            n_ratings=params["n_ratings"],
            seed=params["seed"],
            n_users=params.get("n_users"),
            n_items=params.get("n_items"),
        )


def _check_counts(name: str, out_dir: Path, counts: dict[str, int]) -> None:
    expected = EXPECTED_COUNTS.get(name)
    if expected is not None and counts != expected:
        raise DataError(
            f"{name} built into {out_dir} has {counts}, expected {expected}: "
            "the source is truncated or not the published release",
            "delete the cached download under the cache folder and re-run",
        )


def prepare_dataset(
    name: str,
    paths: Paths,
    *,
    scale: int | None = None,
    seed: int = SEED,
    force: bool = False,
    shape: str | None = None,
) -> Path:
    """Make ``paths.raw_dir(name)`` hold the dataset in the canonical layout; returns that folder.

    ``shape`` (synthetic only, e.g. ``"ml-25m"``): a published release's sizes instead of ``scale``.

    Idempotent: a prepared folder with the same parameters is left alone unless ``force``.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}", f"choose one of {', '.join(DATASETS)}")
    if shape is not None and name != "synthetic":
        raise DataError(f"--shape {shape} is for the synthetic dataset, not {name}", "drop --shape or use synthetic")
    params = _params(name, scale, seed, shape)
    raw_dir = paths.raw_dir(name)
    if not force and is_prepared(raw_dir, params):
        log.info(kv(event="dataset_ready", dataset=name, raw_dir=raw_dir))
        return raw_dir
    with atomic_path(raw_dir, directory=True) as tmp:  # replaces the old folder only once this one loaded cleanly
        _build(name, tmp, paths, params)
        users, movies, ratings = load_dataset(tmp)
        counts = {"users": len(users), "items": len(movies), "ratings": len(ratings)}
        _check_counts(name, tmp, counts)
        manifest = {
            "dataset": name,
            "params": params,
            "counts": counts,
            "sizes": {f: (tmp / f).stat().st_size for f in RAW_FILES},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    log.info(kv(event="dataset_built", dataset=name, raw_dir=raw_dir, **counts))
    return raw_dir
