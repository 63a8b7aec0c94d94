"""The math of the fitted baselines, on a binary user x item matrix: EASE, cosine ItemKNN, ALS.

Pure functions of ``X`` (CSR, users x catalogue, 1 = interacted) so each can be checked against a
brute-force reference on a tiny matrix; :mod:`.baselines` turns them into ranked lists. ``X`` is
sparse because ``XᵀX`` and ``X @ B`` cost its nonzeros, not users x items (MovieLens is about 5 %
dense); the item x item matrices are dense: they are nearly full, and at catalogue sizes up to
~10k items one BLAS call (the inverse of EASE) is the fastest way through them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from mlrec.models.als import als_factors

__all__ = ["als_factors", "cosine_neighbours", "ease_weights", "gram"]


def gram(x: scipy.sparse.csr_matrix) -> np.ndarray:
    """Dense float64 ``XᵀX``: co-occurrence counts (the diagonal holds each item's count)."""
    return np.asarray((x.T @ x).toarray(), dtype=np.float64)


def ease_weights(x: scipy.sparse.csr_matrix, lam: float) -> np.ndarray:
    """EASE (Steck 2019) item-item weights in closed form: ``B = I - P diag(1/diag(P))``, ``P = (XᵀX + λI)⁻¹``.

    This is the ridge regression of each item column on all the others with ``B_jj = 0`` (an item
    may not predict itself); the Lagrangian of that constraint gives the closed form above.
    """
    g = gram(x)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def cosine_neighbours(x: scipy.sparse.csr_matrix, n: int | None) -> np.ndarray:
    """``S[j, i]`` = cosine(i, j) when i is one of item j's ``n`` most similar items, else 0.

    Cosine of the binary columns (items nobody interacted with have similarity 0); an item is never
    its own neighbour; ties in the top n go to the lower column. ``n=None`` keeps every neighbour.
    User u's score of item j is then ``X[u] @ S[j]``: the similarity mass of j's neighbours u has.
    """
    g = gram(x)
    norms = np.sqrt(np.diag(g))
    denom = np.outer(norms, norms)
    s = np.divide(g, denom, out=np.zeros_like(g), where=denom > 0)
    np.fill_diagonal(s, 0.0)
    if n is not None and n < len(s):
        dropped = np.argsort(-s, axis=1, kind="stable")[:, n:]
        np.put_along_axis(s, dropped, 0.0, axis=1)
    return s
