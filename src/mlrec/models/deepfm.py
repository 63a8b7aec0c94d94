"""DeepFM ranker over a feature contract of :class:`mlrec.offline.feature_meta.FeatureMeta`: the seed's 59
features (the seed protocol) or the served ranker's (:mod:`mlrec.offline.rank_features`, no id fields).

The input is ONE float32 tensor in ``meta.names`` order (sparse id fields, sparse side fields,
dense fields) because that is what the exported ONNX model receives from Triton (``ml_input``);
the sparse slices are cast to int64 inside ``forward`` so the serving side never splits the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mlrec.models.layers import FactorizationMachine, FeaturesEmbedding, FeaturesLinear, MultiLayerPerceptron
from mlrec.offline.feature_meta import FeatureMeta


class DeepFM(nn.Module):
    """DeepFM: linear + factorization machine over sparse fields, plus an MLP over dense fields.

    Guo et al., "DeepFM: A Factorization-Machine based Neural Network for CTR Prediction", IJCAI 2017,
    in the seed's variant: ids get 16-dim embeddings, side fields 2-dim ones, the FM interacts fields
    within each group only, and the MLP sees the dense genre counts. ``forward`` returns logits
    (train with ``BCEWithLogitsLoss``); use :meth:`predict_proba` or :class:`WithSigmoid` to serve.
    """

    def __init__(
        self,
        sparse_id_dims: Sequence[int],
        sparse_side_dims: Sequence[int],
        dense_dim: int,
        embed_dim: int = 16,
        embed_dim_side: int = 2,
        mlp_dims: Sequence[int] = (4,),
        dropout: float = 0.2,
        deep_embeddings: bool = False,
    ) -> None:
        super().__init__()
        if not sparse_id_dims and not sparse_side_dims:
            raise ValueError("DeepFM needs at least one sparse field")
        if dense_dim < 0:
            raise ValueError(f"dense_dim must be >= 0, got {dense_dim}")
        self.hparams: dict[str, Any] = {
            "sparse_id_dims": [int(d) for d in sparse_id_dims],
            "sparse_side_dims": [int(d) for d in sparse_side_dims],
            "dense_dim": int(dense_dim),
            "embed_dim": int(embed_dim),
            "embed_dim_side": int(embed_dim_side),
            "mlp_dims": [int(d) for d in mlp_dims],
            "dropout": float(dropout),
            "deep_embeddings": bool(deep_embeddings),
        }
        self.n_id = len(sparse_id_dims)
        self.n_side = len(sparse_side_dims)
        self.n_sparse = self.n_id + self.n_side
        self.dense_dim = int(dense_dim)
        self.n_features = self.n_sparse + self.dense_dim

        self.linear = FeaturesLinear([*sparse_id_dims, *sparse_side_dims])
        self.id_embedding = FeaturesEmbedding(sparse_id_dims, embed_dim) if self.n_id else None
        self.side_embedding = FeaturesEmbedding(sparse_side_dims, embed_dim_side) if self.n_side else None
        self.fm = FactorizationMachine(reduce_sum=True)
        # deep_embeddings: the MLP also reads the side fields' embeddings (shared with the FM, as in the
        # DeepFM paper); the seed's variant (False) feeds it the dense fields only.
        self.deep_embeddings = bool(deep_embeddings) and self.n_side > 0
        deep_in = self.dense_dim + (self.n_side * embed_dim_side if self.deep_embeddings else 0)
        self.mlp = MultiLayerPerceptron(deep_in, mlp_dims, dropout) if deep_in else None

    @classmethod
    def from_meta(cls, meta: FeatureMeta, **hparams: Any) -> DeepFM:
        """Build the model for a saved feature contract; ``hparams`` override the defaults."""
        return cls(meta.sparse_id_dims, meta.sparse_side_dims, meta.dense_dim, **hparams)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float32 (B, n_features) in meta order -> float32 logits (B,)."""
        # skipped while tracing for ONNX: the traced graph has the width baked in anyway
        if not torch.jit.is_tracing() and (x.dim() != 2 or x.shape[1] != self.n_features):
            raise ValueError(
                f"DeepFM expects input (B, {self.n_features}) in feature-meta order, got {tuple(x.shape)}; "
                "rebuild the model from the current feature meta"
            )
        sparse = x[:, : self.n_sparse].long()
        groups = []
        if self.id_embedding is not None:
            groups.append(self.id_embedding(sparse[:, : self.n_id]))
        side = self.side_embedding(sparse[:, self.n_id :]) if self.side_embedding is not None else None
        if side is not None:
            groups.append(side)
        logit = self.linear(sparse) + self.fm(groups)
        if self.mlp is not None:
            deep = x[:, self.n_sparse :]
            if self.deep_embeddings and side is not None:
                deep = torch.cat([deep, side.flatten(1)], dim=1)
            logit = logit + self.mlp(deep)
        return logit.squeeze(1)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Click probability (B,) — what the online ranker sorts by."""
        return torch.sigmoid(self.forward(x))


class DeepFMEnsemble(nn.Module):
    """``members`` DeepFMs of one architecture, each trained on its own from another seed; the logit
    is their mean.

    Why: one DeepFM's candidate ranking moves a lot with its seed (ml-100k validation NDCG@10 within
    the candidates 0.256-0.273 over five seeds, mean 0.265), and the mean of three seeds' logits
    measured 0.274: averaging removes much of that variance. Members are trained apart (not jointly
    on the mean logit), so each is an ordinary DeepFM; this module only averages them, and exports to
    ONNX as one graph.
    """

    def __init__(self, members: int, **member_args: Any) -> None:
        super().__init__()
        if members < 1:
            raise ValueError(f"members must be >= 1, got {members}")
        built = [DeepFM(**member_args) for _ in range(members)]
        self.members = nn.ModuleList(built)
        self.hparams: dict[str, Any] = {"members": int(members), **built[0].hparams}
        self.n_features = built[0].n_features

    @classmethod
    def of(cls, models: Sequence[DeepFM]) -> DeepFMEnsemble:
        """The ensemble holding (copies of) trained ``models``, which must share one architecture."""
        if not models or any(m.hparams != models[0].hparams for m in models):
            raise ValueError("an ensemble needs at least one model, all with the same hyper-parameters")
        ensemble = cls(len(models), **models[0].hparams)
        for member, model in zip(ensemble.members, models, strict=True):
            member.load_state_dict(model.state_dict())
        return ensemble.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float32 (B, n_features) in meta order -> the members' mean logit (B,)."""
        return torch.stack([member(x) for member in self.members]).mean(dim=0)


class WithSigmoid(nn.Module):
    """Export wrapper: logits model -> probability of shape (B, 1).

    Training keeps logits (numerically stable loss); serving wants a probability, and Triton's
    batched output needs a trailing dim, hence (B, 1) rather than (B,).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        # a fresh Module is in training mode; without this, exporters that restore the wrapper's
        # mode afterwards would flip an eval-mode model back to training (dropout, batch stats)
        self.train(model.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: the wrapped model's input -> float32 probabilities (B, 1)."""
        return torch.sigmoid(self.model(x)).unsqueeze(1)
