"""Implicit-feedback matrix factorization by ALS (Hu, Koren, Volinsky 2008), through ``implicit``.

One implementation for the served retrieval vectors (:mod:`mlrec.offline.retrieval`) and the ALS
baseline of the evaluation (:mod:`mlrec.evaluation.baselines`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from threadpoolctl import threadpool_limits

from mlrec.core.constants import SEED


def als_factors(
    x: scipy.sparse.csr_matrix, factors: int, regularization: float, alpha: float, iterations: int, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Implicit-feedback MF (Hu, Koren, Volinsky 2008) by ``implicit``'s ALS: (user factors, item factors).

    ``implicit`` warns when BLAS runs its own thread pool (it fights the solver's), so BLAS is held
    to one thread for the fit. The solver runs on one thread too: on these matrix sizes its thread
    start-up costs more than it saves (2.5x slower with two on ml-100k), and one thread plus a fixed
    ``seed`` makes the fit bit-for-bit repeatable.
    """
    from implicit.cpu.als import AlternatingLeastSquares  # compiled extension, loaded only when ALS runs

    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=seed,
            num_threads=1,
        )
        model.fit(x.astype(np.float32), show_progress=False)
    return np.asarray(model.user_factors), np.asarray(model.item_factors)


def fold_in(vectors: np.ndarray, gram: np.ndarray, regularization: float, alpha: float) -> np.ndarray:
    """The user vector implicit's ALS solves for a user who picked the items whose vectors are ``vectors``
    (rows), against fixed item vectors whose Gram matrix ``Y^T Y`` is ``gram``: float32 (factors,).

    Hu, Koren, Volinsky 2008, eq. (4), with a pick's confidence ``alpha`` as ``implicit`` scales it:
    ``x = (Y^T Y + reg I + sum_i (alpha - 1) y_i y_i^T)^-1 sum_i alpha y_i``; equal to
    ``AlternatingLeastSquares.recalculate_user`` (a test checks it). Why: a user who arrived through
    ``POST /ml/event`` gets a vector for the kNN channel from their first events, without retraining.
    """
    y = np.asarray(vectors, dtype=np.float64).reshape(-1, gram.shape[0])
    a = np.asarray(gram, dtype=np.float64) + regularization * np.eye(gram.shape[0]) + (alpha - 1.0) * (y.T @ y)
    return np.linalg.solve(a, alpha * y.sum(axis=0)).astype(np.float32)
