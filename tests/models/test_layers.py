"""The pytorch-fm style blocks against brute-force references."""

import itertools

import pytest
import torch

from mlrec.models.layers import (
    FactorizationMachine,
    FeaturesEmbedding,
    FeaturesLinear,
    MultiLayerPerceptron,
    field_offsets,
)


def pairwise_reference(emb: torch.Tensor) -> torch.Tensor:
    """sum_{i<j} <v_i, v_j> per row, (B, E) per dimension: the FM definition, written as loops."""
    n_fields = emb.shape[1]
    out = torch.zeros(emb.shape[0], emb.shape[2], dtype=torch.float64)
    for i, j in itertools.combinations(range(n_fields), 2):
        out += emb[:, i].double() * emb[:, j].double()
    return out


def test_field_offsets_are_int64_cumulative_starts():
    offsets = field_offsets([3, 5, 2])
    assert offsets.dtype == torch.int64
    assert offsets.tolist() == [0, 3, 8]


@pytest.mark.parametrize("bad", [[], [3, 0], [-1]])
def test_field_offsets_reject_bad_cardinalities(bad):
    with pytest.raises(ValueError, match="field_dims"):
        field_offsets(bad)


def test_features_linear_adds_field_offsets_and_bias():
    layer = FeaturesLinear([3, 5, 2])
    with torch.no_grad():
        layer.fc.weight.copy_(torch.arange(10, dtype=torch.float32).unsqueeze(1))  # weight of row r = r
        layer.bias.fill_(0.5)
    x = torch.tensor([[1, 4, 0], [0, 0, 1], [2, 3, 1]])
    # rows: field0 code c -> c, field1 -> 3 + c, field2 -> 8 + c
    expected = torch.tensor([[1 + 7 + 8 + 0.5], [0 + 3 + 9 + 0.5], [2 + 6 + 9 + 0.5]])
    out = layer(x)
    assert out.shape == (3, 1) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected)


def test_features_embedding_looks_up_offset_rows():
    layer = FeaturesEmbedding([4, 3], embed_dim=5)
    x = torch.tensor([[3, 0], [1, 2]])
    out = layer(x)
    w = layer.embedding.weight
    assert out.shape == (2, 2, 5)
    torch.testing.assert_close(out[0, 0], w[3])
    torch.testing.assert_close(out[0, 1], w[4 + 0])
    torch.testing.assert_close(out[1, 1], w[4 + 2])


def test_fm_single_group_matches_pairwise_sum():
    torch.manual_seed(0)
    emb = torch.randn(7, 6, 4)
    torch.testing.assert_close(
        FactorizationMachine(reduce_sum=False)(emb).double(), pairwise_reference(emb), rtol=1e-5, atol=1e-5
    )
    torch.testing.assert_close(
        FactorizationMachine(reduce_sum=True)(emb).double(),
        pairwise_reference(emb).sum(dim=1, keepdim=True),
        rtol=1e-5,
        atol=1e-5,
    )


def test_fm_groups_interact_only_within_each_group():
    torch.manual_seed(1)
    ids, side = torch.randn(5, 2, 16), torch.randn(5, 19, 2)
    expected = pairwise_reference(ids).sum(1, keepdim=True) + pairwise_reference(side).sum(1, keepdim=True)
    out = FactorizationMachine(reduce_sum=True)([ids, side])
    assert out.shape == (5, 1)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-4)


def test_fm_groups_differ_from_one_pooled_group():
    torch.manual_seed(2)
    a, b = torch.randn(4, 3, 8), torch.randn(4, 2, 8)
    grouped = FactorizationMachine()([a, b])
    pooled = FactorizationMachine()(torch.cat([a, b], dim=1))
    assert not torch.allclose(grouped, pooled)


def test_fm_unreduced_groups_need_same_dim():
    with pytest.raises(ValueError, match="embed_dim"):
        FactorizationMachine(reduce_sum=False)([torch.randn(2, 2, 4), torch.randn(2, 2, 2)])


def test_mlp_layers_shapes_and_eval_determinism():
    mlp = MultiLayerPerceptron(36, [8, 4], dropout=0.5)
    kinds = [type(m).__name__ for m in mlp.mlp]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 2 + ["Linear"]
    x = torch.randn(32, 36)
    assert mlp(x).shape == (32, 1)
    mlp.eval()
    torch.testing.assert_close(mlp(x), mlp(x))  # dropout off in eval mode
    assert MultiLayerPerceptron(36, [8], 0.0, output_layer=False)(x).shape == (32, 8)
