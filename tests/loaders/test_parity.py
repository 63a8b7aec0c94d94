"""The parity check's candidates: request features as the server computes them (no service needed)."""

from __future__ import annotations

import numpy as np

from mlrec.loaders.parity import random_candidates
from mlrec.offline.channels import REQUEST_FEATURES, absent_features


def test_random_candidates_mix_a_channel_union_with_absent_items():
    items = np.arange(1, 301)
    cands = random_candidates(np.random.default_rng(0), items, 60)
    n = len(cands.ids)
    assert 50 <= n <= 60 and len(np.unique(cands.ids)) == n and np.isin(cands.ids, items).all()
    assert cands.features.shape == (n, len(REQUEST_FEATURES)) and cands.features.dtype == np.float32
    n_channels = cands.features[:, REQUEST_FEATURES.index("n_channels")]
    proposed = n_channels > 0
    assert proposed.any() and (~proposed).any() and (n_channels > 1).any()  # overlaps, and items no channel proposed
    np.testing.assert_array_equal(cands.features[~proposed], absent_features(int((~proposed).sum())))
