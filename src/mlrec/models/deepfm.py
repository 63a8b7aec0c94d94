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
    the candidates 0.254-0.266 over five seeds, mean 0.263), and the mean of three seeds' logits
    measured 0.273: averaging removes much of that variance. Members are trained apart (not jointly
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

    @torch.no_grad()
    def fused(self) -> DeepFM:
        """One DeepFM, K times wider, that computes the same mean logit (up to float rounding).

        Why: served as K graphs side by side, the ensemble costs K times the ONNX nodes, and node
        count more than width is what a small model's inference time follows (onnxruntime, one
        thread, 310 rows, MLP (32, 16): one model 0.40 ms, 3 members 1.11 ms, fused 0.55 ms).
        Fused, it has one member's nodes:

        - embeddings: the members' tables side by side (dim K*E), scaled by 1/sqrt(K), so the FM term
          of the concatenation, a sum over dimensions, is the members' *mean* FM term;
        - linear term: the members' weights averaged;
        - MLP: block-diagonal, member j's block reading the dense fields and its own (rescaled)
          embedding columns; the output layer averages the K blocks.

        Only for export (:func:`mlrec.models.export.export_onnx`): it is never trained.
        """
        members: list[DeepFM] = [m for m in self.members if isinstance(m, DeepFM)]
        k, h = len(members), members[0].hparams
        scale = k**-0.5
        fused = DeepFM(
            h["sparse_id_dims"],
            h["sparse_side_dims"],
            h["dense_dim"],
            embed_dim=h["embed_dim"] * k,
            embed_dim_side=h["embed_dim_side"] * k,
            mlp_dims=[d * k for d in h["mlp_dims"]],
            dropout=h["dropout"],
            deep_embeddings=h["deep_embeddings"],
        )
        fused.linear.fc.weight.copy_(torch.stack([m.linear.fc.weight for m in members]).mean(dim=0))
        fused.linear.bias.copy_(torch.stack([m.linear.bias for m in members]).mean(dim=0))
        for part in ("id_embedding", "side_embedding"):
            target = getattr(fused, part)
            if target is not None:
                tables = [getattr(m, part).embedding.weight for m in members]
                target.embedding.weight.copy_(torch.cat(tables, dim=1) * scale)
        if fused.mlp is not None:
            _fuse_mlp(fused, fused.mlp, [m.mlp for m in members if m.mlp is not None], scale)
        return fused.eval()


def _fuse_mlp(
    fused: DeepFM, target: MultiLayerPerceptron, members: Sequence[MultiLayerPerceptron], scale: float
) -> None:
    """Copy the members' MLPs into ``target``, ``fused``'s K-times-wider one (see :meth:`DeepFMEnsemble.fused`)."""
    k, dense, n_side = len(members), fused.dense_dim, fused.n_side
    e = fused.hparams["embed_dim_side"] // k

    def first_layer_columns(j: int) -> torch.Tensor:
        """Where member j's MLP input columns sit in the fused input: dense first, then per side
        field the K members' embedding dims side by side (field-major, as ``flatten`` lays them)."""
        cols = list(range(dense))
        if fused.deep_embeddings:
            cols += [dense + f * k * e + j * e + d for f in range(n_side) for d in range(e)]
        return torch.tensor(cols, dtype=torch.int64)

    layers = list(target.mlp)
    member_layers = [list(m.mlp) for m in members]
    for i, layer in enumerate(layers):
        parts = [ml[i] for ml in member_layers]
        if isinstance(layer, nn.Linear):
            blocks = []
            for j, part in enumerate(p for p in parts if isinstance(p, nn.Linear)):
                block = torch.zeros(part.out_features, layer.in_features)
                if i == 0:
                    weight = part.weight.clone()
                    weight[:, dense:] /= scale  # the fused embeddings were scaled by `scale`
                    block[:, first_layer_columns(j)] = weight
                else:
                    block[:, j * part.in_features : (j + 1) * part.in_features] = part.weight
                blocks.append(block)
            biases: list[torch.Tensor] = [p.bias for p in parts if isinstance(p, nn.Linear)]
            if i == len(layers) - 1:  # the output layer: the mean of the members' outputs
                layer.weight.copy_(torch.stack(blocks).sum(dim=0) / k)
                layer.bias.copy_(torch.stack(biases).mean(dim=0))
            else:
                layer.weight.copy_(torch.cat(blocks, dim=0))
                layer.bias.copy_(torch.cat(biases))
        elif isinstance(layer, nn.BatchNorm1d):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(layer, name).copy_(torch.cat([getattr(p, name) for p in parts]))


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
