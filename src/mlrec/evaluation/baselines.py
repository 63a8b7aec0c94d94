"""Baselines over the full catalogue, in numpy: what the served system has to beat.

Every baseline is one function with the same signature, :data:`Baseline`: it gets a
:class:`BaselineInputs`, a list length k and, as keyword arguments with defaults, its
hyperparameters, and returns int64 ``[users, k]`` item ids, best first, ``-1`` padded, each
user's seen items removed exactly like the service removes them. :func:`top_k_unseen` does the
removal, tie-breaking and padding, so a new baseline only computes scores: write
``def name(inp, k, **hyperparameters)`` returning ``top_k_unseen(score_rows, inp.seen, inp.catalogue, k)``
and add one :class:`BaselineSpec` to :data:`BASELINES`, with the grid its hyperparameters are
chosen from; the run tunes it on the validation split (:mod:`.tuning`), scores and reports it.

``BaselineInputs`` holds offline artifacts only. The held-out events are deliberately not in it,
so no baseline can peek at the answers it is scored against; the same type carries the
validation split (fit events, validation users, their seen items) during tuning.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse

from mlrec.core.constants import ITEMID, LABEL, USERID
from mlrec.core.paths import VECTOR_RECALL_SCRIPT
from mlrec.evaluation.errors import EvaluationError
from mlrec.evaluation.metrics import PAD
from mlrec.models import item_item as item_models
from mlrec.offline.popular import popular_items

Params = Mapping[str, int | float | str | None]  # one grid point: JSON-able hyperparameter values
RATED, CLICKED = "rated", "clicked"  # which events make the interaction matrix: any rating, or label 1 only


@dataclass(frozen=True)
class BaselineInputs:
    """What a baseline may look at: the users to rank, the catalogue and offline artifacts (never the held-out)."""

    userids: np.ndarray  # users to rank, one output row each
    catalogue: np.ndarray  # sorted item ids indexed in Elasticsearch; the only items a list may hold
    seen: np.ndarray  # bool [users, catalogue] from seen_mask: removed from every list
    offline: pd.DataFrame  # offline events (train + test, ISTEST marks test)
    user_vectors: np.ndarray  # exported MF user vectors, row = user id
    item_vectors: np.ndarray  # exported MF item vectors, row = item id


Baseline = Callable[..., np.ndarray]  # (inp: BaselineInputs, k: int, **hyperparameters) -> int64 [users, k]


@dataclass(frozen=True)
class BaselineSpec:
    """One baseline as the report shows it: its key, its plot label, where its numbers come from, how it is tuned.

    ``grid`` holds the hyperparameter settings tried on the validation split, best by NDCG@10 wins
    (ties: the earlier setting). ``None`` = not validated at all: the MF baseline ranks with the
    exported vectors, which were trained on the validation events, so a validation score would be a lie.
    """

    name: str
    label: str
    source: str
    build: Baseline
    grid: tuple[Params, ...] | None = ({},)


def grid(**axes: tuple[int | float | str | None, ...]) -> tuple[Params, ...]:
    """Every combination of the axes' values, the first axis varying slowest."""
    return tuple(dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values()))


def catalogue_columns(items: np.ndarray, catalogue: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column of each item in the sorted catalogue, whether it is in the catalogue at all)."""
    items = np.asarray(items, dtype=np.int64)
    pos = np.clip(np.searchsorted(catalogue, items), 0, max(len(catalogue) - 1, 0))
    inside = catalogue[pos] == items if len(catalogue) else np.zeros(len(items), bool)
    return pos, inside


def seen_mask(seen: dict[int, np.ndarray], userids: np.ndarray, catalogue: np.ndarray) -> np.ndarray:
    """bool ``[users, catalogue]``: the user rated the item offline (items outside the catalogue ignored)."""
    lists = [np.asarray(seen.get(int(u), ()), dtype=np.int64) for u in userids]
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    items = np.concatenate(lists) if lengths.sum() else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(len(userids)), lengths)
    pos, ok = catalogue_columns(items, catalogue)
    mask = np.zeros((len(userids), len(catalogue)), dtype=bool)
    mask[rows[ok], pos[ok]] = True
    return mask


def top_k_unseen(
    score_rows: Callable[[slice], np.ndarray], seen: np.ndarray, catalogue: np.ndarray, k: int, chunk: int = 1024
) -> np.ndarray:
    """Top k catalogue items per user by ``score_rows(user slice)``, seen items removed, ties by item id.

    Users are scored ``chunk`` at a time so memory stays ``chunk x catalogue`` on any dataset.
    A non-finite score never makes a list: rows run out into ``-1`` padding instead.
    """
    out = np.full((len(seen), k), PAD, dtype=np.int64)
    for lo in range(0, len(seen), chunk):
        rows = slice(lo, lo + chunk)
        scores = np.where(seen[rows], -np.inf, score_rows(rows))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(scores, order, axis=1)
        out[rows, : order.shape[1]] = np.where(np.isfinite(best), catalogue[order], PAD)
    return out


@dataclass(frozen=True)
class UserItems:
    """The binary interaction matrix a model is fit on, and where each user to rank sits in it."""

    matrix: scipy.sparse.csr_matrix  # float32 [every user with an event or to rank, catalogue]; 1 = interacted
    rows: np.ndarray  # row of inp.userids[i] in matrix


def user_items(inp: BaselineInputs, interactions: str) -> UserItems:
    """Every offline user's interactions (``rated``: any rating, ``clicked``: label 1) over the catalogue.

    Users with events but not ranked still shape the item-item statistics, so they get rows too.
    """
    if interactions not in (RATED, CLICKED):
        raise ValueError(f"interactions={interactions!r}: expected {RATED!r} or {CLICKED!r}")
    events = inp.offline if interactions == RATED else inp.offline.loc[inp.offline[LABEL] == 1]
    users = events[USERID].to_numpy(np.int64)
    all_users = np.union1d(users, np.asarray(inp.userids, dtype=np.int64))
    cols, inside = catalogue_columns(events[ITEMID].to_numpy(np.int64), inp.catalogue)
    rows = np.searchsorted(all_users, users[inside])
    matrix = scipy.sparse.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols[inside])), shape=(len(all_users), len(inp.catalogue))
    )
    matrix.data[:] = 1.0  # a pair listed twice stays one interaction
    return UserItems(matrix, np.searchsorted(all_users, inp.userids))


def _rank_by_counts(inp: BaselineInputs, items: np.ndarray, k: int) -> np.ndarray:
    """One list for everyone by how often each catalogue item occurs in ``items``, minus each user's seen."""
    cols, inside = catalogue_columns(items, inp.catalogue)
    counts = np.bincount(cols[inside], minlength=len(inp.catalogue)).astype(np.float64)
    return top_k_unseen(
        lambda rows: np.broadcast_to(counts, (len(inp.seen[rows]), len(counts))), inp.seen, inp.catalogue, k
    )


def most_popular(inp: BaselineInputs, k: int) -> np.ndarray:
    """Most clicked in train (the service's own fallback ranking), minus each user's seen items."""
    catalogue = inp.catalogue
    ids, share = popular_items(inp.offline, top=len(catalogue))
    pop = np.zeros(len(catalogue), dtype=np.float64)
    pos, inside = catalogue_columns(ids, catalogue)
    pop[pos[inside]] = share[inside]
    return top_k_unseen(
        lambda rows: np.broadcast_to(pop, (len(inp.seen[rows]), len(catalogue))), inp.seen, catalogue, k
    )


def most_rated(inp: BaselineInputs, k: int) -> np.ndarray:
    """Most rated offline (train + test, any rating: a rating says the user picked the item)."""
    return _rank_by_counts(inp, inp.offline[ITEMID].to_numpy(np.int64), k)


def mf_dot_product(inp: BaselineInputs, k: int) -> np.ndarray:
    """The served retrieval vectors: exact dot product over the whole catalogue, seen removed (vs ES kNN)."""
    user_vectors, item_vectors = inp.user_vectors, inp.item_vectors
    if inp.userids.max(initial=0) >= len(user_vectors) or inp.catalogue.max(initial=0) >= len(item_vectors):
        raise EvaluationError(
            f"MF vectors cover {len(user_vectors)} users / {len(item_vectors)} items, fewer than the ids evaluated",
            f"re-run `python {VECTOR_RECALL_SCRIPT}`",
        )
    items = item_vectors[inp.catalogue].astype(np.float64)
    users = user_vectors[inp.userids].astype(np.float64)
    return top_k_unseen(lambda rows: users[rows] @ items.T, inp.seen, inp.catalogue, k)


def ease(inp: BaselineInputs, k: int, lam: float = 500.0, interactions: str = RATED) -> np.ndarray:
    """EASE: the user's interaction row times the closed-form item-item weights (:func:`item_models.ease_weights`)."""
    ui = user_items(inp, interactions)
    b = item_models.ease_weights(ui.matrix, lam)
    x = ui.matrix[ui.rows]
    return top_k_unseen(lambda rows: x[rows] @ b, inp.seen, inp.catalogue, k)


def itemknn(inp: BaselineInputs, k: int, neighbours: int | None = 100, interactions: str = RATED) -> np.ndarray:
    """ItemKNN: per item, the cosine mass of its ``neighbours`` nearest items the user has (None = all items)."""
    ui = user_items(inp, interactions)
    s = item_models.cosine_neighbours(ui.matrix, neighbours)
    x = ui.matrix[ui.rows]
    return top_k_unseen(lambda rows: x[rows] @ s.T, inp.seen, inp.catalogue, k)


def als(
    inp: BaselineInputs,
    k: int,
    factors: int = 64,
    regularization: float = 0.01,
    alpha: float = 1.0,
    iterations: int = 15,
    interactions: str = RATED,
) -> np.ndarray:
    """Implicit-feedback MF by ALS (``implicit``), fit on the interaction matrix; dot product over the catalogue."""
    ui = user_items(inp, interactions)
    users, items = item_models.als_factors(ui.matrix, factors, regularization, alpha, iterations)
    u, v = users[ui.rows].astype(np.float64), items.astype(np.float64)
    return top_k_unseen(lambda rows: u[rows] @ v.T, inp.seen, inp.catalogue, k)


BOTH = (RATED, CLICKED)
# scored and reported in this order, after the served system and the recall stages
BASELINES: tuple[BaselineSpec, ...] = (
    BaselineSpec(
        "mf",
        "baseline: served retrieval vectors (ALS), exact dot product",
        "numpy, full catalogue",
        mf_dot_product,
        None,
    ),
    BaselineSpec("popular", "baseline: most popular by train clicks", "numpy, full catalogue", most_popular),
    BaselineSpec("popular_rated", "baseline: most popular by all ratings", "numpy, full catalogue", most_rated),
    BaselineSpec(
        "itemknn",
        "baseline: ItemKNN (cosine)",
        "numpy",
        itemknn,
        grid(neighbours=(20, 50, 100, 200, None), interactions=BOTH),
    ),
    BaselineSpec(
        "ease",
        "baseline: EASE (closed form)",
        "numpy",
        ease,
        grid(lam=(50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0), interactions=BOTH),
    ),
    BaselineSpec(
        "als",
        "baseline: ALS implicit-feedback MF",
        "implicit ALS",
        als,
        grid(factors=(32, 64), regularization=(0.01, 0.1), alpha=(1.0, 10.0), iterations=(15,), interactions=BOTH),
    ),
)
