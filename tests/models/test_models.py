"""MF and DeepFM: shapes, learning capacity, checkpoints that rebuild them exactly, and the ONNX export."""

import dataclasses
import re
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch

from mlrec.core.contracts import TRITON_INPUT, TRITON_OUTPUT
from mlrec.core.paths import Paths
from mlrec.models import (
    MODELS,
    CheckpointError,
    DeepFM,
    DeepFMEnsemble,
    MatrixFactorization,
    WithSigmoid,
    build_model,
    load_checkpoint,
    save_checkpoint,
)
from mlrec.models.export import ExportError, export_onnx
from mlrec.offline.feature_meta import Feature, FeatureMeta
from mlrec.offline.train import TrainConfig, fit


def small_meta(n_users: int = 30, n_items: int = 40, n_dense: int = 4) -> FeatureMeta:
    feats = [
        Feature("userid", "sparse_id", "user", n_users),
        Feature("itemid", "sparse_id", "item", n_items),
        Feature("gender", "sparse_side", "user", 3),
        Feature("age", "sparse_side", "user", 8),
        *[Feature(f"genre_{g}", "sparse_side", "item", 2) for g in range(3)],
        *[Feature(f"dense_{d}", "dense", "user") for d in range(n_dense)],
    ]
    return FeatureMeta(tuple(feats))


def served_meta(n_dense: int = 4) -> FeatureMeta:
    """Shaped like the served ranker's meta: no id fields (the ids only size the tables, in ``extra``),
    side fields, then dense user, item and per-request fields."""
    feats = [
        Feature("gender", "sparse_side", "user", 3),
        Feature("age", "sparse_side", "user", 8),
        *[Feature(f"genre_{g}", "sparse_side", "item", 2) for g in range(3)],
        *[Feature(f"dense_{d}", "dense", "user") for d in range(n_dense)],
        Feature("item_pop", "dense", "item"),
        Feature("es_rank", "dense", "request"),
    ]
    return FeatureMeta(tuple(feats), extra={"n_users": 30, "n_items": 40})


def random_rows(meta: FeatureMeta, n: int, seed: int = 0) -> torch.Tensor:
    """Float rows in meta order: valid integer codes for sparse fields, N(0,1) for dense."""
    g = torch.Generator().manual_seed(seed)
    sparse = [torch.randint(0, f.cardinality, (n, 1), generator=g).float() for f in meta.features if f.kind != "dense"]
    dense = torch.randn(n, meta.dense_dim, generator=g)
    return torch.cat([*sparse, dense], dim=1)


@pytest.mark.parametrize(
    "name, make",
    [
        ("mf", lambda: MatrixFactorization(4, 5)),
        ("deepfm", lambda: DeepFM.from_meta(small_meta())),
        ("deepfm", lambda: DeepFM.from_meta(served_meta(), mlp_dims=(8, 4), deep_embeddings=True)),
        ("deepfm_ensemble", lambda: DeepFMEnsemble(3, **DeepFM.from_meta(served_meta(), mlp_dims=(8, 4)).hparams)),
    ],
)
def test_registry_rebuilds_each_model_from_its_hparams(name, make):
    model = make()
    rebuilt = build_model(name, model.hparams)
    assert type(rebuilt) is type(model) is MODELS[name]
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_unknown_model_name_is_refused():
    with pytest.raises(KeyError, match="registered: \\['deepfm', 'deepfm_ensemble', 'mf'\\]"):
        build_model("gbdt", {})


def test_mf_forward_is_dot_product_of_exported_vectors():
    torch.manual_seed(0)
    mf = MatrixFactorization(10, 20, embed_dim=16)
    x = torch.tensor([[0, 0], [3, 7], [9, 19]], dtype=torch.int64)
    logits = mf(x)
    assert logits.shape == (3,) and logits.dtype == torch.float32
    P, Q = mf.user_vectors(), mf.item_vectors()
    assert P.shape == (10, 16) and Q.shape == (20, 16) and P.dtype == Q.dtype == "float32"
    expected = torch.tensor([P[u] @ Q[i] for u, i in x.tolist()])
    torch.testing.assert_close(logits.detach(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mf.predict_proba(x), torch.sigmoid(logits))


def test_deepfm_from_meta_shapes_and_dtypes():
    meta = small_meta()
    model = DeepFM.from_meta(meta, mlp_dims=(8,))
    assert model.hparams["mlp_dims"] == [8]
    assert model.n_features == meta.n_features
    x = random_rows(meta, 64)
    logits = model(x)
    assert logits.shape == (64,) and logits.dtype == torch.float32
    model.eval()
    proba = WithSigmoid(model)(x)
    assert proba.shape == (64, 1)
    torch.testing.assert_close(proba[:, 0], torch.sigmoid(model(x)))
    torch.testing.assert_close(model.predict_proba(x), torch.sigmoid(model(x)))


def test_deepfm_rejects_wrong_width():
    model = DeepFM.from_meta(small_meta())
    with pytest.raises(ValueError, match="feature-meta order"):
        model(torch.zeros(2, model.n_features - 1))


def test_deepfm_without_side_or_dense_fields_still_runs():
    model = DeepFM([5, 6], [], 0)
    out = model(torch.tensor([[1.0, 2.0], [4.0, 5.0]]))
    assert out.shape == (2,)


def test_deepfm_needs_a_sparse_field():
    with pytest.raises(ValueError, match="at least one sparse field"):
        DeepFM([], [], 3)


def test_deepfm_without_id_fields_is_linear_plus_fm_plus_an_mlp_over_dense_and_side_embeddings():
    """The served variant (no ids, ``deep_embeddings``): the MLP reads the dense fields and the side
    fields' embeddings (the ones the FM interacts), as in the DeepFM paper."""
    torch.manual_seed(0)
    meta = served_meta()
    model = DeepFM.from_meta(meta, mlp_dims=(8,), deep_embeddings=True).eval()
    assert model.id_embedding is None and model.n_id == 0 and model.n_features == meta.n_features
    assert model.mlp.mlp[0].in_features == meta.dense_dim + len(meta.sparse_side_dims) * model.hparams["embed_dim_side"]
    x = random_rows(meta, 32, seed=3)
    sparse, dense = x[:, : model.n_sparse].long(), x[:, model.n_sparse :]
    side = model.side_embedding(sparse)
    with torch.no_grad():
        expected = model.linear(sparse) + model.fm([side]) + model.mlp(torch.cat([dense, side.flatten(1)], dim=1))
        torch.testing.assert_close(model(x), expected.squeeze(1))
    # the seed's variant: the MLP reads the dense fields only
    plain = DeepFM.from_meta(meta, mlp_dims=(8,))
    assert plain.mlp.mlp[0].in_features == meta.dense_dim and plain.hparams["deep_embeddings"] is False


def test_deepfm_side_fields_reach_its_mlp_only_with_deep_embeddings():
    """The side embeddings' gradient from the whole model equals the one from linear + FM alone
    exactly when the MLP does not read them."""
    meta = served_meta()
    x = random_rows(meta, 64, seed=4)
    for deep in (True, False):
        torch.manual_seed(0)
        model = DeepFM.from_meta(meta, mlp_dims=(8,), deep_embeddings=deep)
        sparse = x[:, : model.n_sparse].long()
        model(x).sum().backward()
        whole = model.side_embedding.embedding.weight.grad.clone()
        model.zero_grad()
        (model.linear(sparse) + model.fm([model.side_embedding(sparse)])).sum().backward()
        wide_and_fm = model.side_embedding.embedding.weight.grad
        assert wide_and_fm.abs().sum() > 0
        assert torch.allclose(whole, wide_and_fm) is not deep


def test_deepfm_with_side_fields_only_runs():
    for deep in (False, True):
        model = DeepFM([], [3, 2], 0, mlp_dims=(4,), deep_embeddings=deep)
        assert (model.mlp is not None) == deep
        assert model(torch.tensor([[1.0, 0.0], [2.0, 1.0]])).shape == (2,)


def test_deepfm_overfits_one_small_batch():
    torch.manual_seed(0)
    meta = small_meta()
    model = DeepFM.from_meta(meta)
    x = random_rows(meta, 128, seed=1)
    y = torch.randint(0, 2, (128,), generator=torch.Generator().manual_seed(2)).float()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    first = loss_fn(model(x), y).item()
    for _ in range(300):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first, (first, loss.item())


def test_ensemble_scores_the_mean_of_its_members_logits():
    """DeepFMEnsemble.of copies trained models; its logit is their mean (ONNX: the export tests below)."""
    meta = served_meta()
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(DeepFM.from_meta(meta, mlp_dims=(8, 4), deep_embeddings=True).eval())
    ensemble = DeepFMEnsemble.of(models)
    x = random_rows(meta, 16)
    with torch.no_grad():
        expected = torch.stack([m(x) for m in models]).mean(dim=0)
        torch.testing.assert_close(ensemble(x), expected)
        assert not torch.allclose(models[0](x), expected)  # the members differ, so the mean is not one of them
    with pytest.raises(ValueError, match="same hyper-parameters"):
        DeepFMEnsemble.of([models[0], DeepFM.from_meta(meta, mlp_dims=(4,))])
    with pytest.raises(ValueError, match="members must be >= 1"):
        DeepFMEnsemble(0, **models[0].hparams)


@pytest.mark.parametrize(
    "layout, hparams",
    [
        ("served", {"mlp_dims": (8, 4), "deep_embeddings": True}),  # no ids, MLP over the side embeddings
        ("seed", {"mlp_dims": (4,)}),  # id fields, MLP over the dense fields only
        ("seed", {"mlp_dims": ()}),  # no hidden layer: the output layer reads the input
    ],
)
def test_fused_ensemble_is_one_wider_deepfm_with_the_same_scores(layout, hparams):
    """fused() turns K members into one DeepFM K times wider whose logit is the members' mean; batch
    norm statistics and every part (linear, FM over each embedding group, MLP) carry over."""
    meta = served_meta() if layout == "served" else small_meta()
    members = []
    for seed in range(3):
        torch.manual_seed(seed)
        member = DeepFM.from_meta(meta, **hparams)
        member.train()
        member(random_rows(meta, 64, seed=seed))  # move batch-norm running stats off their init
        members.append(member.eval())
    ensemble = DeepFMEnsemble.of(members)
    fused = ensemble.fused()
    assert type(fused) is DeepFM and not fused.training
    assert fused.hparams["embed_dim_side"] == 3 * members[0].hparams["embed_dim_side"]
    assert fused.hparams["mlp_dims"] == [3 * d for d in hparams["mlp_dims"]]
    x = random_rows(meta, 200, seed=9)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), ensemble(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["mf", "deepfm", "deepfm-served"])
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, name):
    torch.manual_seed(0)
    meta = small_meta()
    if name == "mf":
        model, x = MatrixFactorization(30, 40), random_rows(meta, 32)[:, :2].long()
    elif name == "deepfm":
        model, x = DeepFM.from_meta(meta, mlp_dims=(4,)), random_rows(meta, 32)
    else:
        served = served_meta()
        model, x = DeepFM.from_meta(served, mlp_dims=(8, 4), deep_embeddings=True), random_rows(served, 32)
    name = name.removesuffix("-served")
    # move batch-norm running stats away from their init so they must be saved too
    model.train()
    model(x)
    model.eval()
    path = tmp_path / "ckpt" / f"{name}.pt"
    save_checkpoint(path, model, name, model.hparams, config={"lr": 1e-3, "dims": (4,)}, extra={"val_auc": 0.8})
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    loaded, ckpt = load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    assert (
        ckpt["model_name"] == name and ckpt["config"] == {"lr": 1e-3, "dims": [4]} and ckpt["extra"]["val_auc"] == 0.8
    )
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_checkpoint_rejects_non_plain_config(tmp_path):
    model = MatrixFactorization(3, 3)
    with pytest.raises(TypeError, match=re.escape("config.obj")):
        save_checkpoint(tmp_path / "m.pt", model, "mf", model.hparams, config={"obj": object()})


def test_missing_checkpoint_names_file_and_fix(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="re-run the training script") as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_corrupt_checkpoint_is_a_named_error(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="re-run the training script"):
        load_checkpoint(path)


def test_checkpoint_with_mismatched_args_is_a_named_error(tmp_path):
    model = MatrixFactorization(5, 5)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, "mf", {"n_users": 6, "n_items": 5, "embed_dim": 16})
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(path)


def test_with_sigmoid_keeps_the_wrapped_models_mode():
    model = DeepFM.from_meta(small_meta()).eval()
    assert not WithSigmoid(model).training
    assert WithSigmoid(model.train()).training


# -- ONNX export: the production export_onnx on a checkpoint + meta saved by the production functions --


@pytest.fixture(scope="module", params=["seed", "served", "ensemble"])
def trained(request, tmp_path_factory):
    """A tiny DeepFM fitted by the training loop (so batch norm holds real running stats), saved as
    the pipeline saves it: its checkpoint with the feature names, and the feature meta beside it.
    Three times: the seed's layout (id fields), the served one (no ids, MLP over the side embeddings),
    and the served ranker as the pipeline saves it, a mean of such models."""
    meta = small_meta() if request.param == "seed" else served_meta()
    x = random_rows(meta, 512, seed=1)
    y = (x[:, -1] + 0.5 * x[:, -2] > 0).float()  # clicks follow two dense fields
    members = []
    for seed in range(3 if request.param == "ensemble" else 1):
        torch.manual_seed(seed)
        member = DeepFM.from_meta(meta, mlp_dims=(8,), deep_embeddings=request.param != "seed")
        fit(member, x[:384], y[:384], x[384:], y[384:], TrainConfig(epochs=3, batch_size=64, patience=3, seed=seed))
        members.append(member)
    model, name = (DeepFMEnsemble.of(members), "deepfm_ensemble") if len(members) > 1 else (members[0], "deepfm")
    paths = Paths(tmp_path_factory.mktemp("export"))
    save_checkpoint(paths.rank_model, model, name, model.hparams, extra={"feature_names": meta.names})
    meta.save(paths.feature_meta)
    return paths, meta, WithSigmoid(model).eval()


def test_export_onnx_equals_pytorch_for_any_batch_size(trained, tmp_path):
    paths, meta, reference = trained
    onnx_path, got_meta, _ = export_onnx(paths, tmp_path / "ranker.onnx")
    assert onnx_path == tmp_path / "ranker.onnx" and got_meta == meta
    assert sorted(tmp_path.iterdir()) == [onnx_path]  # written atomically: no temp file left behind
    session = ort.InferenceSession(str(onnx_path))
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == (TRITON_INPUT, TRITON_OUTPUT)  # the tensors Triton is asked for
    assert isinstance(inp.shape[0], str) and inp.shape[1] == meta.n_features  # a symbolic batch axis
    for rows in (1, 7, 300):  # the export traced a batch of 2
        batch = random_rows(meta, rows, seed=100 + rows)
        got = session.run([out.name], {inp.name: batch.numpy()})[0]
        assert got.shape == (rows, 1)
        with torch.no_grad():
            np.testing.assert_allclose(got, reference(batch).numpy(), rtol=1e-5, atol=1e-6)


def test_export_refuses_a_checkpoint_trained_on_other_features(trained, tmp_path):
    paths, meta, _ = trained
    other = Paths(tmp_path / "data")
    other.rank_model.parent.mkdir(parents=True)
    shutil.copy(paths.rank_model, other.rank_model)
    renamed = tuple(dataclasses.replace(f, name=f"new_{f.name}") if f.kind == "dense" else f for f in meta.features)
    FeatureMeta(renamed).save(other.feature_meta)  # same width, other columns: scores would be garbage
    with pytest.raises(ExportError, match="trained on other features") as err:
        export_onnx(other, tmp_path / "ranker.onnx")
    assert "s7_model_train" in err.value.hint
    assert not (tmp_path / "ranker.onnx").exists()
