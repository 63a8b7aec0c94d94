"""The training loop and the AUC it early-stops on."""

import numpy as np
import pytest
import torch

from mlrec.models import DeepFM, MatrixFactorization
from mlrec.offline.train import TrainConfig, fit, fit_epochs, predict_logits, roc_auc


def pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Reference AUC by definition: P(score_pos > score_neg) + 0.5 P(tie), over all pairs."""
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


# -- roc_auc ------------------------------------------------------------------------------------
def test_roc_auc_hand_computed():
    # sklearn's docstring example: 3 of 4 positive/negative pairs are ordered correctly
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_roc_auc_counts_ties_as_half():
    # pairs (pos, neg): (0.5, 0.5) tie -> 0.5, (0.5, 0.2) 1, (0.9, 0.5) 1, (0.9, 0.2) 1 -> 3.5 / 4
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)
    assert roc_auc([1, 0, 1, 0, 0], [3, 3, 3, 3, 3]) == pytest.approx(0.5)


def test_roc_auc_perfect_and_reversed():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert roc_auc(y, s) == 1.0
    assert roc_auc(y, -s) == 0.0


def test_roc_auc_matches_pairwise_definition_with_many_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    s = rng.integers(0, 30, 2000) + 3 * y  # coarse scores: lots of ties
    assert roc_auc(y, s) == pytest.approx(pairwise_auc(y, s), abs=1e-12)


@pytest.mark.parametrize("y", [[1, 1, 1], [0, 0]])
def test_roc_auc_single_class_is_a_clear_error(y):
    with pytest.raises(ValueError, match="only one class"):
        roc_auc(y, np.arange(len(y)))


def test_roc_auc_rejects_bad_input():
    with pytest.raises(ValueError, match="0/1"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="3 values"):
        roc_auc([0, 1, 1], [0.1, 0.2])


# -- fit ----------------------------------------------------------------------------------------
def planted_deepfm_data(n: int, seed: int):
    """Clicks driven by one side field and one dense field; ids carry no signal."""
    rng = np.random.default_rng(seed)
    user, item = rng.integers(0, 50, n), rng.integers(0, 60, n)
    side = rng.integers(0, 3, n)
    dense = rng.normal(size=(n, 2))
    logit = 2.5 * dense[:, 0] + 2.0 * (side == 1) - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    X = np.column_stack([user, item, side, dense]).astype(np.float32)
    return X, y


def new_deepfm(seed: int = 0) -> DeepFM:
    torch.manual_seed(seed)
    return DeepFM([50, 60], [3], 2)


def test_fit_learns_planted_signal_and_restores_best_epoch():
    X, y = planted_deepfm_data(6000, seed=0)
    Xv, yv = planted_deepfm_data(2000, seed=1)
    model = new_deepfm()
    cfg = TrainConfig(epochs=8, batch_size=256, lr=1e-2, patience=8)
    res = fit(model, X, y, Xv, yv, cfg)
    assert res.best_val_auc > 0.8
    assert len(res.history) == 8 and not res.stopped_early
    aucs = [h.val_auc for h in res.history]
    assert res.best_epoch == 1 + int(np.argmax(aucs))
    assert all(h.seconds > 0 and np.isfinite(h.train_loss) for h in res.history)
    assert not model.training
    assert roc_auc(yv, predict_logits(model, Xv)) == pytest.approx(res.best_val_auc, abs=1e-6)


def test_fit_restores_best_not_last_weights_when_overfitting():
    # MF on pure-noise-heavy labels with a high lr: validation AUC peaks early, then overfits
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 40
    pu, qi = rng.normal(size=(n_users, 4)), rng.normal(size=(n_items, 4))

    def sample(n):
        u, i = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
        p = 1 / (1 + np.exp(-(pu[u] * qi[i]).sum(1)))
        y = (rng.random(n) < 0.6 * p + 0.2).astype(np.float32)
        return np.column_stack([u, i]).astype(np.int64), y

    X, y = sample(800)
    Xv, yv = sample(3000)
    torch.manual_seed(0)
    model = MatrixFactorization(n_users, n_items, embed_dim=16)
    res = fit(model, X, y, Xv, yv, TrainConfig(epochs=30, batch_size=64, lr=0.05, weight_decay=0, patience=30))
    last = res.history[-1].val_auc
    assert last < res.best_val_auc - 0.01, "precondition: the run must overfit for this test to mean anything"
    assert res.best_epoch < len(res.history)
    assert roc_auc(yv, predict_logits(model, Xv)) == pytest.approx(res.best_val_auc, abs=1e-6)


def test_early_stopping_stops_when_val_auc_stalls():
    X, y = planted_deepfm_data(4000, seed=0)
    Xv, yv = planted_deepfm_data(1000, seed=1)
    res = fit(new_deepfm(), X, y, Xv, yv, TrainConfig(epochs=100, batch_size=256, lr=1e-2, patience=2, min_delta=1e-3))
    assert res.stopped_early
    assert len(res.history) < 100
    assert len(res.history) == res.best_epoch + 2  # exactly `patience` epochs without a gain


def test_fit_is_deterministic_given_the_seed():
    X, y = planted_deepfm_data(3000, seed=0)
    Xv, yv = planted_deepfm_data(1000, seed=1)
    cfg = TrainConfig(epochs=3, batch_size=128, lr=1e-2, patience=3)
    runs = []
    for seed in (7, 7, 8):
        model = new_deepfm()
        res = fit(model, X, y, Xv, yv, TrainConfig(**{**cfg.to_dict(), "seed": seed}))
        runs.append(([h.train_loss for h in res.history], predict_logits(model, Xv)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][0] != runs[2][0]  # the seed really drives shuffling/dropout


def test_fit_rejects_bad_inputs():
    X, y = planted_deepfm_data(200, seed=0)
    with pytest.raises(ValueError, match="y_val holds a single class"):
        fit(new_deepfm(), X, y, X, np.ones_like(y), TrainConfig(epochs=1))
    with pytest.raises(ValueError, match="X_train has 200 rows but y_train has 199"):
        fit(new_deepfm(), X, y[:-1], X, y, TrainConfig(epochs=1))
    with pytest.raises(ValueError, match=r"TrainConfig\.epochs"):
        TrainConfig(epochs=0)


def test_predict_logits_batches_match_and_mode_is_restored():
    X, _ = planted_deepfm_data(1000, seed=3)
    model = new_deepfm()
    model.train()
    full = predict_logits(model, X, batch_size=10_000)
    assert model.training
    assert full.shape == (1000,) and full.dtype == np.float32
    np.testing.assert_allclose(predict_logits(model, X, batch_size=97), full, rtol=1e-5, atol=1e-6)


# -- fit_epochs (the refit after early stopping) ------------------------------------------------
def test_fit_epochs_equals_fit_run_to_the_same_epoch():
    """Same loss, optimizer, seeding and shuffling as fit: N fixed epochs give fit's epoch-N weights."""
    X, y = planted_deepfm_data(3000, seed=0)
    Xv, yv = planted_deepfm_data(1000, seed=1)
    cfg = TrainConfig(epochs=3, batch_size=256, lr=1e-2, patience=100, min_delta=-1.0)  # every epoch "improves"
    by_fit = new_deepfm()
    res = fit(by_fit, X, y, Xv, yv, cfg)
    assert res.best_epoch == 3
    by_epochs = new_deepfm()
    fit_epochs(by_epochs, X, y, 3, cfg)
    assert not by_epochs.training
    for name, tensor in by_fit.state_dict().items():
        torch.testing.assert_close(by_epochs.state_dict()[name], tensor, rtol=0, atol=0)


def test_fit_epochs_rejects_zero_epochs():
    X, y = planted_deepfm_data(100, seed=0)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        fit_epochs(new_deepfm(), X, y, 0, TrainConfig())
