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
