"""The fitted baselines' math against brute-force references on tiny matrices."""

import numpy as np
import pytest
import scipy.sparse

from mlrec.models.item_item import als_factors, cosine_neighbours, ease_weights, gram


def binary(seed, users=9, items=7, density=0.4):
    rng = np.random.default_rng(seed)
    x = (rng.random((users, items)) < density).astype(np.float64)
    x[:, -1] = 0.0  # an item nobody interacted with
    return x


def test_gram_counts_co_occurrences():
    x = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0]], np.float32)
    assert gram(scipy.sparse.csr_matrix(x)).tolist() == [[3, 2, 1], [2, 2, 0], [1, 0, 1]]


@pytest.mark.parametrize(("seed", "lam"), [(0, 1.0), (1, 10.0), (2, 250.0)])
def test_ease_weights_solve_the_ridge_regression_of_each_item_on_the_others(seed, lam):
    """Column j of B minimises ``|X_j - X B_j|² + λ|B_j|²`` given ``B_jj = 0``: a ridge fit on the other columns."""
    x = binary(seed)
    b = ease_weights(scipy.sparse.csr_matrix(x), lam)
    items = x.shape[1]
    for j in range(items):
        others = [i for i in range(items) if i != j]
        xo = x[:, others]
        expected = np.linalg.solve(xo.T @ xo + lam * np.eye(items - 1), xo.T @ x[:, j])
        np.testing.assert_allclose(b[others, j], expected, rtol=1e-9, atol=1e-12)
        assert b[j, j] == 0.0


def brute_cosine_neighbours(x, n):
    items = x.shape[1]
    cos = np.zeros((items, items))
    for i in range(items):
        for j in range(items):
            norm = np.sqrt(x[:, i].sum() * x[:, j].sum())
            if i != j and norm > 0:
                cos[j, i] = (x[:, i] * x[:, j]).sum() / norm
    out = np.zeros_like(cos)
    for j in range(items):
        # item j's n most similar other items, ties to the lower item; every item when n is None
        ranked = sorted((i for i in range(items) if i != j), key=lambda i: (-cos[j, i], i))
        for i in ranked if n is None else ranked[:n]:
            out[j, i] = cos[j, i]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 2, 4, None])
def test_cosine_neighbours_match_nested_loops(seed, n):
    x = binary(seed)
    x[:, 1] = x[:, 0]  # two identical items: similarity 1 and ties in every other row
    np.testing.assert_allclose(
        cosine_neighbours(scipy.sparse.csr_matrix(x), n), brute_cosine_neighbours(x, n), rtol=1e-12, atol=1e-15
    )


def test_als_factors_have_one_row_per_user_and_item_and_repeat_with_the_seed():
    x = scipy.sparse.csr_matrix(binary(0, users=40, items=25))
    users, items = als_factors(x, factors=6, regularization=0.1, alpha=2.0, iterations=4)
    assert users.shape == (40, 6) and items.shape == (25, 6)
    assert np.isfinite(users).all() and np.isfinite(items).all()
    again = als_factors(x, factors=6, regularization=0.1, alpha=2.0, iterations=4)
    np.testing.assert_array_equal(again[0], users)
    np.testing.assert_array_equal(again[1], items)
    other = als_factors(x, factors=6, regularization=0.1, alpha=2.0, iterations=4, seed=99)
    assert not np.array_equal(other[0], users)


def test_als_fits_the_interactions_it_is_given():
    """A sanity check that the fit learns: observed pairs score above unobserved ones on average."""
    x = binary(3, users=60, items=20, density=0.3)
    users, items = als_factors(scipy.sparse.csr_matrix(x), factors=8, regularization=0.01, alpha=10.0, iterations=10)
    scores = users @ items.T
    assert scores[x == 1].mean() > scores[x == 0].mean() + 0.3
