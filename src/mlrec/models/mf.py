"""Matrix factorization for vector recall: one vector per user, one per item, scored by dot product.

The logit is the plain inner product ``<P[u], Q[i]>`` (no biases) because the online kNN search in
Elasticsearch ranks items by exactly that product: what training optimises is what recall serves.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mlrec.core.constants import EMB_DIM


class MatrixFactorization(nn.Module):
    """Implicit-feedback MF trained as a classifier on (user, item) pairs.

    Koren, Bell & Volinsky, "Matrix Factorization Techniques for Recommender Systems",
    IEEE Computer 2009 — without the bias terms, so the score stays a pure dot product.
    """

    def __init__(self, n_users: int, n_items: int, embed_dim: int = EMB_DIM) -> None:
        super().__init__()
        if n_users < 1 or n_items < 1 or embed_dim < 1:
            raise ValueError(f"n_users, n_items and embed_dim must be >= 1, got {n_users}, {n_items}, {embed_dim}")
        self.hparams = {"n_users": int(n_users), "n_items": int(n_items), "embed_dim": int(embed_dim)}
        self.P = nn.Embedding(n_users, embed_dim)
        self.Q = nn.Embedding(n_items, embed_dim)
        nn.init.xavier_uniform_(self.P.weight.data)
        nn.init.xavier_uniform_(self.Q.weight.data)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: int64 (B, 2) of [userid, itemid] codes -> float32 logits (B,)."""
        x = x.long()
        # index_select rather than Embedding.forward: a faster backward on CPU (see layers._lookup)
        user = self.P.weight.index_select(0, x[:, 0])
        item = self.Q.weight.index_select(0, x[:, 1])
        return (user * item).sum(dim=1)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Click probability (B,); training uses logits, so the sigmoid lives only here."""
        return torch.sigmoid(self.forward(x))

    def user_vectors(self) -> np.ndarray:
        """float32 (n_users, embed_dim); row index = user id code."""
        return self.P.weight.detach().cpu().numpy().astype(np.float32, copy=True)

    def item_vectors(self) -> np.ndarray:
        """float32 (n_items, embed_dim); row index = item id code."""
        return self.Q.weight.detach().cpu().numpy().astype(np.float32, copy=True)
