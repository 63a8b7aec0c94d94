"""Building blocks shared by the ranking and recall models (pytorch-fm style).

Each block takes *integer codes per field* and looks them up in one table that holds every
field's rows back to back; a per-field offset turns "code c of field f" into a row index. One
table per model part (instead of one per field) keeps the forward pass a single gather, which is
what makes the ONNX graph small and the CPU epoch fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn


def _lookup(table: nn.Embedding, x: torch.Tensor) -> torch.Tensor:
    """Rows of ``table`` for int64 indices (B, F) -> (B, F, dim).

    ``index_select`` instead of ``nn.Embedding.forward``: same values and gradients, but its
    backward (``index_add_``) is ~5x faster on CPU than ``embedding_dense_backward`` for the many
    repeated indices of small-cardinality fields — that backward was half of a DeepFM step.
    It exports to ONNX as a plain ``Gather`` like the embedding does.
    """
    return table.weight.index_select(0, x.reshape(-1)).reshape(*x.shape, table.embedding_dim)


def field_offsets(field_dims: Sequence[int]) -> torch.Tensor:
    """Row offset of each field inside a shared table: ``(0, d0, d0+d1, ...)`` as int64 (F,)."""
    dims = np.asarray(list(field_dims), dtype=np.int64)
    if dims.ndim != 1 or dims.size == 0 or (dims < 1).any():
        raise ValueError(f"field_dims must be a non-empty list of positive cardinalities, got {list(field_dims)}")
    return torch.from_numpy(np.concatenate(([0], np.cumsum(dims)[:-1])).astype(np.int64))


class FeaturesLinear(nn.Module):
    """First-order term of a factorization machine: one learned weight per (field, code) + bias.

    Rendle, "Factorization Machines", ICDM 2010 (the ``w0 + sum_i w_i x_i`` part).
    """

    offsets: torch.Tensor  # a buffer (registered in __init__), declared for the type checker

    def __init__(self, field_dims: Sequence[int], output_dim: int = 1) -> None:
        super().__init__()
        self.fc = nn.Embedding(int(sum(field_dims)), output_dim)
        self.bias = nn.Parameter(torch.zeros((output_dim,)))
        # not persistent: derived from the constructor args, which the checkpoint stores
        self.register_buffer("offsets", field_offsets(field_dims), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: int64 (B, F) codes per field -> float32 (B, output_dim)."""
        return _lookup(self.fc, x + self.offsets).sum(dim=1) + self.bias


class FeaturesEmbedding(nn.Module):
    """Latent vector per (field, code), the ``v_i`` of a factorization machine.

    Rendle, "Factorization Machines", ICDM 2010; Xavier/Glorot uniform init
    (Glorot & Bengio, AISTATS 2010) as in pytorch-fm, so a fresh FM term starts near zero.
    """

    offsets: torch.Tensor  # a buffer (registered in __init__), declared for the type checker

    def __init__(self, field_dims: Sequence[int], embed_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(int(sum(field_dims)), embed_dim)
        self.register_buffer("offsets", field_offsets(field_dims), persistent=False)
        nn.init.xavier_uniform_(self.embedding.weight.data)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: int64 (B, F) codes per field -> float32 (B, F, embed_dim)."""
        return _lookup(self.embedding, x + self.offsets)


class FactorizationMachine(nn.Module):
    """Second-order FM interaction ``sum_{i<j} <v_i, v_j>`` in O(F·E) via the square trick.

    Rendle, "Factorization Machines", ICDM 2010, eq. (5): ``0.5 * ((sum v)^2 - sum v^2)``.
    Given a list of embedding groups (e.g. 16-dim id embeddings and 2-dim side embeddings, which
    cannot share one inner product), the interaction is computed *within* each group and summed:
    fields of different groups do not interact.
    """

    def __init__(self, reduce_sum: bool = True) -> None:
        super().__init__()
        self.reduce_sum = reduce_sum

    @staticmethod
    def _interaction(x: torch.Tensor, reduce_sum: bool) -> torch.Tensor:
        square_of_sum = torch.sum(x, dim=1) ** 2
        sum_of_square = torch.sum(x * x, dim=1)
        ix = square_of_sum - sum_of_square
        if reduce_sum:
            ix = torch.sum(ix, dim=1, keepdim=True)
        return 0.5 * ix

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """x: float32 (B, F, E), or a list of such groups (each its own F and E).

        Returns float32 (B, 1) when ``reduce_sum`` else (B, E); with a list and ``reduce_sum=False``
        every group must share E (the per-dimension terms are summed across groups).
        """
        if isinstance(x, torch.Tensor):
            return self._interaction(x, self.reduce_sum)
        groups = list(x)
        if not groups:
            raise ValueError("FactorizationMachine needs at least one embedding group")
        if not self.reduce_sum and len({g.shape[-1] for g in groups}) > 1:
            raise ValueError("reduce_sum=False needs every embedding group to have the same embed_dim")
        out = self._interaction(groups[0], self.reduce_sum)
        for group in groups[1:]:
            out = out + self._interaction(group, self.reduce_sum)
        return out


class MultiLayerPerceptron(nn.Module):
    """Feed-forward tower: (Linear -> BatchNorm1d -> ReLU -> Dropout) per hidden layer, then Linear(., 1).

    The "deep" component of DeepFM (Guo et al., "DeepFM: A Factorization-Machine based Neural
    Network for CTR Prediction", IJCAI 2017); batch norm as in pytorch-fm.
    """

    def __init__(self, input_dim: int, dims: Sequence[int], dropout: float, output_layer: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for dim in dims:
            layers += [nn.Linear(input_dim, dim), nn.BatchNorm1d(dim), nn.ReLU(), nn.Dropout(p=dropout)]
            input_dim = dim
        if output_layer:
            layers.append(nn.Linear(input_dim, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float32 (B, input_dim) -> float32 (B, 1), or (B, dims[-1]) without the output layer."""
        return self.mlp(x)
