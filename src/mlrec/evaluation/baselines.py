"""Baselines over the full catalogue, in numpy: what the served system has to beat.

Every baseline is one function with the same signature, :data:`Baseline`: it gets a
:class:`BaselineInputs` and a list length k and returns int64 ``[users, k]`` item ids, best
first, ``-1`` padded, each user's seen items removed exactly like the service removes them.
:func:`top_k_unseen` does the removal, tie-breaking and padding, so a new baseline (ItemKNN,
EASE, ALS, ...) only computes scores: write ``def name(inp, k)`` returning
``top_k_unseen(score_rows, inp.seen, inp.catalogue, k)`` and add one :class:`BaselineSpec` to
:data:`BASELINES`; the run scores and reports it beside the others.

``BaselineInputs`` holds offline artifacts only. The held-out events are deliberately not in it,
so no baseline can peek at the answers it is scored against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlrec.core.paths import VECTOR_RECALL_SCRIPT
from mlrec.evaluation.errors import EvaluationError
from mlrec.evaluation.metrics import PAD
from mlrec.offline.popular import popular_items


@dataclass(frozen=True)
class BaselineInputs:
    """What a baseline may look at: the users to rank, the catalogue and offline artifacts (never the held-out)."""

    userids: np.ndarray  # users to rank, one output row each
    catalogue: np.ndarray  # sorted item ids indexed in Elasticsearch; the only items a list may hold
    seen: np.ndarray  # bool [users, catalogue] from seen_mask: removed from every list
    offline: pd.DataFrame  # offline events (train + test, ISTEST marks test)
    user_vectors: np.ndarray  # exported MF user vectors, row = user id
    item_vectors: np.ndarray  # exported MF item vectors, row = item id


Baseline = Callable[[BaselineInputs, int], np.ndarray]


@dataclass(frozen=True)
class BaselineSpec:
    """One baseline as the report shows it: its key, its plot label, where its numbers come from."""

    name: str
    label: str
    source: str
    build: Baseline


def seen_mask(seen: dict[int, np.ndarray], userids: np.ndarray, catalogue: np.ndarray) -> np.ndarray:
    """bool ``[users, catalogue]``: the user rated the item offline (items outside the catalogue ignored)."""
    lists = [np.asarray(seen.get(int(u), ()), dtype=np.int64) for u in userids]
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    items = np.concatenate(lists) if lengths.sum() else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(len(userids)), lengths)
    pos = np.clip(np.searchsorted(catalogue, items), 0, max(len(catalogue) - 1, 0))
    ok = catalogue[pos] == items if len(catalogue) else np.zeros(len(items), bool)
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


def most_popular(inp: BaselineInputs, k: int) -> np.ndarray:
    """Most clicked in train (the service's own fallback ranking), minus each user's seen items."""
    catalogue = inp.catalogue
    ids, share = popular_items(inp.offline, top=len(catalogue))
    pop = np.zeros(len(catalogue), dtype=np.float64)
    pos = np.searchsorted(catalogue, ids)
    inside = (pos < len(catalogue)) & (catalogue[np.minimum(pos, len(catalogue) - 1)] == ids)
    pop[pos[inside]] = share[inside]
    return top_k_unseen(
        lambda rows: np.broadcast_to(pop, (len(inp.seen[rows]), len(catalogue))), inp.seen, catalogue, k
    )


def mf_dot_product(inp: BaselineInputs, k: int) -> np.ndarray:
    """ID-only MF: exact dot product of the exported vectors over the whole catalogue, seen removed."""
    user_vectors, item_vectors = inp.user_vectors, inp.item_vectors
    if inp.userids.max(initial=0) >= len(user_vectors) or inp.catalogue.max(initial=0) >= len(item_vectors):
        raise EvaluationError(
            f"MF vectors cover {len(user_vectors)} users / {len(item_vectors)} items, fewer than the ids evaluated",
            f"re-run `python {VECTOR_RECALL_SCRIPT}`",
        )
    items = item_vectors[inp.catalogue].astype(np.float64)
    users = user_vectors[inp.userids].astype(np.float64)
    return top_k_unseen(lambda rows: users[rows] @ items.T, inp.seen, inp.catalogue, k)


# scored and reported in this order, after the served system and the recall stages
BASELINES: tuple[BaselineSpec, ...] = (
    BaselineSpec("mf", "baseline: ID-only MF, exact dot product", "numpy, full catalogue", mf_dot_product),
    BaselineSpec("popular", "baseline: most popular by train clicks", "numpy, full catalogue", most_popular),
)
