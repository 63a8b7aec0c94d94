"""ALS fold-in: the closed form equals what ``implicit`` solves for the same user against its item factors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from threadpoolctl import threadpool_limits

from mlrec.models.als import fold_in


@pytest.mark.parametrize(("alpha", "regularization"), [(1.0, 1.0), (4.0, 0.1)])
def test_fold_in_is_implicits_recalculate_user(alpha, regularization):
    from implicit.cpu.als import AlternatingLeastSquares

    x = scipy.sparse.random(60, 40, density=0.2, format="csr", random_state=1, dtype=np.float32)
    x.data[:] = 1.0
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=8, regularization=regularization, alpha=alpha, iterations=4, random_state=0, num_threads=1
        )
        model.fit(x, show_progress=False)
        y = np.asarray(model.item_factors)
        for items in ([3], [1, 5, 7, 30]):
            row = scipy.sparse.csr_matrix((np.ones(len(items), np.float32), ([0] * len(items), items)), shape=(1, 40))
            expected = np.asarray(model.recalculate_user(0, row)).ravel()
            got = fold_in(y[items], y.T @ y, regularization, alpha)
            assert got.dtype == np.float32 and got.shape == (8,)
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
