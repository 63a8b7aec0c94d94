"""Baseline hyperparameters chosen on the offline part only: a validation split carved from it, a grid search.

Why: a baseline tuned on the held-out events would be scored on the answers it was tuned for, and
the served system has to beat honest numbers. So the protocol is repeated one step earlier: each
user's last :data:`VALIDATION_LAST_N` offline events (time order) are the validation held-out
(positives = label 1), everything before is the fitting data, and the items of the fitting data are
the seen items removed from the validation lists. Each grid point is fit on the fitting data and
scored by :func:`validation_scores` (the evaluation's own :func:`~.scoring.score_lists`); the best by
NDCG@10 is then refit on all offline events and ranks the held-out users.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlrec.core.constants import ITEMID, ONLINE_LAST_N, RESPONSE_SIZE, TS, USERID
from mlrec.core.paths import SPLIT_SCRIPT
from mlrec.evaluation.baselines import BaselineInputs, BaselineSpec, Params, catalogue_columns
from mlrec.evaluation.errors import EvaluationError
from mlrec.evaluation.heldout import HeldOut, held_out_positives
from mlrec.evaluation.scoring import score_lists
from mlrec.offline.split import split_last_events

VALIDATION_LAST_N = ONLINE_LAST_N  # the same cut as the held-out, one step earlier in time
VALIDATION_KS = (10, RESPONSE_SIZE)
VALIDATION_METRICS = ("ndcg@10", f"recall@{RESPONSE_SIZE}")
PICK_BY = "ndcg@10"


@dataclass(frozen=True)
class ValidationSplit:
    fit: pd.DataFrame  # offline events before each user's last VALIDATION_LAST_N
    held: pd.DataFrame  # each user's last VALIDATION_LAST_N offline events (all of them if fewer)


@dataclass(frozen=True)
class Validation:
    """What every grid point is fit on and scored against; built once per run."""

    inputs: BaselineInputs  # validation users, fit events, the fit events' items as seen
    held: HeldOut  # their validation positives


@dataclass(frozen=True)
class Trial:
    params: dict[str, int | float | str | None]
    metrics: dict[str, float]  # VALIDATION_METRICS on the validation split


@dataclass(frozen=True)
class Tuning:
    """The setting a baseline runs with, why (its validation score), and every setting tried."""

    chosen: dict[str, int | float | str | None]
    validation: dict[str, float]  # the chosen setting's VALIDATION_METRICS
    trials: list[Trial]
    users: int  # validation users scored
    seconds: float


@dataclass(frozen=True)
class BaselineRun:
    lists: np.ndarray  # int64 [held-out users, k]
    tuning: Tuning | None  # None: the baseline is not validated (see BaselineSpec.grid)
    seconds: float  # tuning + refit + ranking


def validation_split(offline: pd.DataFrame, last_n: int = VALIDATION_LAST_N) -> ValidationSplit:
    """Each user's last ``last_n`` offline events (by time, ties in file order, as the split orders them)."""
    missing = {USERID, ITEMID, TS} - set(offline.columns)
    if missing:
        raise EvaluationError(f"offline events lack columns {sorted(missing)}", f"re-run `python {SPLIT_SCRIPT}`")
    return ValidationSplit(*split_last_events(offline, last_n))


def validation(inp: BaselineInputs, split: ValidationSplit | None = None) -> Validation:
    """The validation split as baseline inputs: users with a validation positive, fit events, fit items as seen."""
    split = split or validation_split(inp.offline)
    held = held_out_positives(split.held)
    if len(held.userids) == 0:
        raise EvaluationError(
            "no user has a positive (label 1) among their last offline events: nothing to tune baselines on",
            "evaluate a dataset with more events per user",
        )
    users = split.fit[USERID].to_numpy(np.int64)
    row = np.clip(np.searchsorted(held.userids, users), 0, len(held.userids) - 1)
    col, in_catalogue = catalogue_columns(split.fit[ITEMID].to_numpy(np.int64), inp.catalogue)
    keep = (held.userids[row] == users) & in_catalogue
    seen = np.zeros((len(held.userids), len(inp.catalogue)), dtype=bool)
    seen[row[keep], col[keep]] = True
    inputs = BaselineInputs(held.userids, inp.catalogue, seen, split.fit, inp.user_vectors, inp.item_vectors)
    return Validation(inputs, held)


def validation_scores(lists: np.ndarray, held: HeldOut, catalogue_size: int) -> dict[str, float]:
    """NDCG@10 and Recall@50 of ``lists`` against ``held``, by the same scoring as the reported methods."""
    m = score_lists("validation", "", "", lists, held, catalogue_size, ks=VALIDATION_KS, curve_k=1)
    return {key: m.metrics[key] for key in VALIDATION_METRICS}


def tune(spec: BaselineSpec, val: Validation) -> Tuning | None:
    """Fit and score every grid point on the validation split; the best NDCG@10 wins (ties: the earlier one)."""
    if spec.grid is None:
        return None
    t0 = time.perf_counter()
    width = max(VALIDATION_KS)
    trials = []
    for params in spec.grid:
        lists = spec.build(val.inputs, width, **params)
        trials.append(Trial(dict(params), validation_scores(lists, val.held, len(val.inputs.catalogue))))
    best = max(range(len(trials)), key=lambda i: (trials[i].metrics[PICK_BY], -i))
    return Tuning(trials[best].params, trials[best].metrics, trials, len(val.held.userids), time.perf_counter() - t0)


def run_baselines(specs: Iterable[BaselineSpec], inp: BaselineInputs, k: int) -> dict[str, BaselineRun]:
    """Each baseline tuned on the validation split, refit on all offline events with its pick, top k per user."""
    specs = tuple(specs)
    val = validation(inp) if any(s.grid is not None for s in specs) else None
    runs = {}
    for spec in specs:
        t0 = time.perf_counter()
        tuning = tune(spec, val) if val is not None else None
        lists = spec.build(inp, k, **(tuning.chosen if tuning else {}))
        runs[spec.name] = BaselineRun(lists, tuning, time.perf_counter() - t0)
    return runs


def describe(params: Params) -> str:
    """``lam=500 interactions=rated``: a setting in one line for the table (None reads "all")."""

    def text(v: int | float | str | None) -> str:
        return "all" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    return " ".join(f"{key}={text(v)}" for key, v in params.items())
